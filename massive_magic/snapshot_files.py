"""The files of a snapshot directory: atomic writes and checksummed JSON documents.

Shared by the frame snapshots (``snapshots``) and the metadata recorded beside them
(``snapshot_meta``). A file is written to a temporary file in the same directory,
fsynced and renamed over its name (``os.replace``), so a reader sees the old file or
the new one, never half of one. A JSON document carries the SHA-256 of its canonical
form, so an edit or a truncation is noticed when it is read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from massive_magic.errors import NextStep, SnapshotError, Step

__all__ = [
    "damaged",
    "fsync_directory",
    "iso",
    "json_document",
    "parse_time",
    "read_document",
    "write_atomic",
    "write_temporary",
]


def damaged(path: Path, what: str) -> SnapshotError:
    """The error for a snapshot file that cannot be trusted (recording it again repairs it)."""
    return SnapshotError(
        f"The snapshot {path} is damaged: {what}.",
        reason="corrupt",
        path=str(path),
        next_steps=(NextStep(Step.RECORD_SNAPSHOT),),
    )


def json_document(body: Mapping[str, Any]) -> bytes:
    """``body`` plus the SHA-256 of its canonical form (``manifest_sha256``), as JSON bytes."""
    checksum = hashlib.sha256(_canonical(body)).hexdigest()
    document = {**body, "manifest_sha256": checksum}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_document(path: Path, fmt: str, version: int, what: str = "manifest") -> dict[str, Any]:
    """A document ``json_document`` wrote, checked: its format, version and checksum."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise damaged(path, f"its {what} disappeared while being read") from None
    except (ValueError, UnicodeDecodeError):
        raise damaged(path, f"its {what} is not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != fmt:
        raise damaged(path, f"its {what} is not a massive-magic {fmt.rsplit('-', 1)[-1]} file")
    if document.get("version") != version:
        raise damaged(path, f"its {what} has version {document.get('version')!r}")
    checksum = document.pop("manifest_sha256", None)
    if checksum != hashlib.sha256(_canonical(document)).hexdigest():
        raise damaged(path, f"its {what} was edited (its checksum does not match)")
    return document


def write_temporary(path: Path, data: Any) -> str:
    """``data`` in a new temporary file beside ``path``, fsynced: ready for ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(memoryview(data))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, data: Any) -> None:
    """``data`` at ``path``, all or nothing (the directory is created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(write_temporary(path, data), path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make the renames durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def iso(moment: dt.datetime) -> str:
    """``2026-11-02T08:15:00Z``: UTC, whole seconds."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: Any, path: Path | None = None) -> dt.datetime:
    """An aware datetime from ISO text (naive = UTC); a damaged file's error if it is none."""
    try:
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        if path is None:
            raise
        raise damaged(path, f"its recording time {text!r} is not a date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
