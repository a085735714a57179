"""Snapshots: card results recorded to disk and replayed exactly, offline.

::

    store = SnapshotStore("snapshots/")
    key = store.key(url, 497, parameters, limit)       # what Client.card sends
    store.save(key, frame)                              # record
    frame = store.load(key, max_age="7d")               # replay: equal to the live frame

A snapshot matches only the same server URL, card (plus dashboard and dashcard
for a dashboard's card), parameters and ``limit``. Parameters are compared in a
canonical form (keys and parameter objects sorted), so the order they were
written in does not matter; nothing near is ever substituted. When none
matches, :class:`SnapshotError` says which snapshot of the card is nearest and
how it differs.

On disk, per snapshot, a Parquet file (readable by any tool; see
``snapshot_format`` for the few encoded columns) and a small JSON manifest: the
key, the column layout and dtypes, the frame's ``attrs`` (display names, types
and provenance: never a session, password or API key) and SHA-256 checksums of
the Parquet file and of the manifest itself. Both are written atomically (a
temporary file in the same directory, fsync, ``os.replace``), the manifest last,
so a half-written snapshot is never matched; a damaged one is an error, never a
partial frame.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from massive_magic.errors import ConfigError, NextStep, SnapshotError, Step
from massive_magic.snapshot_files import (
    damaged,
    fsync_directory,
    iso,
    json_document,
    parse_time,
    read_document,
    write_temporary,
)
from massive_magic.snapshot_keys import (
    SnapshotKey,
    SnapshotMode,
    describe_age,
    describe_parameters,
    differences,
    parse_max_age,
    parse_mode,
    snapshot_key,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SnapshotInfo",
    "SnapshotKey",
    "SnapshotMode",
    "SnapshotStore",
    "parse_max_age",
    "parse_mode",
    "snapshot_key",
]

FORMAT = "massive-magic-snapshot"
VERSION = 1

#: Provenance keys of ``attrs["massive"]`` a snapshot keeps (anything else is dropped).
PROVENANCE = (
    "url",
    "card_id",
    "name",
    "dashboard_id",
    "dashcard_id",
    "parameters",
    "row_count",
    "limit",
    "source",
    "truncated",
    "cached",
    "results_timezone",
    "fetched_at",
    "elapsed",
    "card_url",
    "card_updated_at",
    "dashboard_url",
    "client_version",
)


# -- the store -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot on disk, as ``SnapshotStore.list`` and ``find`` describe it."""

    key: SnapshotKey
    name: str | None
    rows: int
    recorded_at: dt.datetime  # when the data was read from Metabase (its fetched_at)
    age: dt.timedelta
    size: int  # bytes on disk, Parquet + manifest
    path: Path  # the manifest
    parquet: Path

    @property
    def card_id(self) -> int:
        return self.key.card_id

    @property
    def dashboard_id(self) -> int | None:
        return self.key.dashboard_id

    @property
    def dashcard_id(self) -> int | None:
        return self.key.dashcard_id

    @property
    def url(self) -> str:
        return self.key.url

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return list(json.loads(self.key.parameters))

    @property
    def limit(self) -> int | None:
        return self.key.limit


class SnapshotStore:
    """Snapshots in one directory: key -> Parquet + manifest (see the module docstring).

    A missing directory is simply empty; it is created by the first ``save``.
    ``clock`` gives "now" (an aware datetime) for ages; tests inject one.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.directory = Path(directory).expanduser()
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def __repr__(self) -> str:
        return f"SnapshotStore({str(self.directory)!r})"

    key = staticmethod(snapshot_key)

    # -- writing --

    def save(self, key: SnapshotKey, frame: pd.DataFrame) -> Path:
        """Record ``frame`` under ``key`` (replacing that key's snapshot); the manifest's path."""
        from . import snapshot_format as fmt

        table, layout = fmt.encode_frame(frame)
        data = fmt.write_parquet(table)
        del table
        massive = _provenance(frame.attrs.get("massive"))
        name = key.name or (massive.get("name") if isinstance(massive.get("name"), str) else None)
        stem = f"{_prefix(key, name)}-{key.digest[:16]}"
        body: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "key": key.identity(),
            "name": name,
            "recorded_at": _recorded_at(massive.get("fetched_at")) or iso(self._clock()),
            "written_at": iso(self._clock()),
            "parquet": {
                "file": stem + ".parquet",
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": data.size,
            },
            "layout": layout,
            "attrs": _attrs(frame.attrs, massive),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        parquet, manifest = self.directory / (stem + ".parquet"), self.directory / (stem + ".json")
        older = sorted(self.directory.glob(f"*-{key.digest[:16]}.*"))
        written = write_temporary(parquet, data)
        for path in older:  # unmatched from here on: an old manifest goes before its data
            if path.suffix == ".json":
                path.unlink(missing_ok=True)
        os.replace(written, parquet)
        os.replace(write_temporary(manifest, json_document(body)), manifest)
        for path in older:  # a renamed card's old Parquet file
            if path.suffix == ".parquet" and path != parquet:
                path.unlink(missing_ok=True)
        fsync_directory(self.directory)
        return manifest

    # -- reading --

    def find(self, key: SnapshotKey) -> SnapshotInfo | None:
        """The snapshot recorded under exactly ``key``, or None; a damaged manifest raises."""
        found = self._lookup(key)
        return None if found is None else found[0]

    def _lookup(self, key: SnapshotKey) -> tuple[SnapshotInfo, dict[str, Any]] | None:
        for path in sorted(self.directory.glob(f"*-{key.digest[:16]}.json")):
            body = read_document(path, FORMAT, VERSION)
            recorded = _key_of(body, path)
            if recorded != key:
                raise damaged(path, "its manifest's key does not match its file name")
            return self._info(path, body, recorded), body
        return None

    def load(
        self,
        key: SnapshotKey,
        *,
        max_age: str | dt.timedelta | None = None,
        now: dt.datetime | None = None,
    ) -> pd.DataFrame:
        """The frame recorded under exactly ``key``, equal to the live one it was.

        ``attrs["massive"]`` is the recorded provenance with ``source`` =
        ``"snapshot"`` and ``snapshot`` = the manifest's path; ``fetched_at``
        stays the time the data was read from Metabase. Raises
        :class:`SnapshotError`: none matches (with the nearest difference), older
        than ``max_age``, or damaged.
        """
        limit = parse_max_age(max_age)
        found = self._lookup(key)
        if found is None:
            raise self._missing(key)
        info, body = found
        now = now or self._clock()
        if limit is not None:
            age = now - info.recorded_at
            if age > limit:
                raise SnapshotError(
                    f"The snapshot of {key.label} is {describe_age(age)} old (recorded "
                    f"{iso(info.recorded_at)}), older than the {describe_age(limit)} allowed: "
                    f"{info.path}.",
                    reason="expired",
                    path=str(info.path),
                    next_steps=(NextStep(Step.RECORD_SNAPSHOT), NextStep(Step.ALLOW_OLDER)),
                )
        return self._frame(info, body)

    def _frame(self, info: SnapshotInfo, body: dict[str, Any]) -> pd.DataFrame:
        from . import snapshot_format as fmt

        try:
            data = info.parquet.read_bytes()
        except FileNotFoundError:
            raise damaged(info.path, "its Parquet file is missing") from None
        expected = body["parquet"]
        if len(data) != expected["bytes"]:
            raise damaged(info.path, "its Parquet file does not match the manifest's checksum")
        # Both release the GIL: hash while Arrow parses, decode only once the sum is right.
        table: Any = None
        problem = ""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="massive-sha") as pool:
            digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
            try:
                table = fmt.read_parquet(data)
            except SnapshotError as exc:
                problem = exc.message
            if digest.result() != expected["sha256"]:
                raise damaged(info.path, "its Parquet file does not match the manifest's checksum")
        frame = None
        try:
            frame = fmt.decode_frame(table, body["layout"]) if table is not None else None
        except SnapshotError as exc:
            problem = exc.message
        if frame is None:
            raise damaged(info.path, problem)
        attrs = json.loads(json.dumps(body["attrs"]))
        massive = attrs.get("massive")
        if isinstance(massive, dict):
            massive["source"] = "snapshot"
            massive["snapshot"] = str(info.path)
        frame.attrs.update(attrs)
        return frame

    def list(self) -> list[SnapshotInfo]:
        """Every readable snapshot, by card then recording time (damaged ones are left out)."""
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                body = read_document(path, FORMAT, VERSION)
                found.append(self._info(path, body, _key_of(body, path)))
            except SnapshotError:
                continue
        found.sort(key=lambda i: (i.key.card_id, i.key.dashboard_id or 0, i.recorded_at))
        return found

    def problems(self) -> builtins.list[tuple[Path, str]]:
        """The manifests ``list`` leaves out, each with what is wrong with it."""
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                _key_of(read_document(path, FORMAT, VERSION), path)
            except SnapshotError as exc:
                found.append((path, exc.message))
        return found

    def nearest(self, key: SnapshotKey) -> str | None:
        """How the nearest snapshot of the same card differs from ``key``; None if none."""
        same = [i for i in self.list() if i.key.card_id == key.card_id]
        if not same:
            return None
        scored = [(differences(i.key, key), i) for i in same]
        best = min(scored, key=lambda s: (len(s[0]), -s[1].recorded_at.timestamp()))
        return "; ".join(best[0]) or None

    def read_through(
        self,
        key: SnapshotKey,
        fetch: Callable[[], pd.DataFrame],
        *,
        mode: str | SnapshotMode,
        max_age: str | dt.timedelta | None = None,
    ) -> pd.DataFrame:
        """One card read in ``mode``: ``fetch()`` is the live read (``run_query``)."""
        mode = parse_mode(mode)
        if mode is SnapshotMode.REPLAY:
            return self.load(key, max_age=max_age)
        if mode is SnapshotMode.AUTO:
            try:
                return self.load(key, max_age=max_age)
            except SnapshotError as exc:
                if exc.reason not in ("missing", "expired"):
                    raise
        frame = fetch()
        if mode is not SnapshotMode.OFF:
            self.save(key, frame)
        return frame

    # -- helpers --

    def _info(self, path: Path, body: dict[str, Any], key: SnapshotKey) -> SnapshotInfo:
        parquet = path.with_name(str(body["parquet"]["file"]))
        recorded = parse_time(body["recorded_at"], path)
        try:
            size = path.stat().st_size + parquet.stat().st_size
        except FileNotFoundError:
            size = path.stat().st_size if path.exists() else 0
        return SnapshotInfo(
            key=key,
            name=body.get("name"),
            rows=int(body["layout"]["rows"]),
            recorded_at=recorded,
            age=max(self._clock() - recorded, dt.timedelta(0)),
            size=size,
            path=path,
            parquet=parquet,
        )

    def _missing(self, key: SnapshotKey) -> SnapshotError:
        asked = describe_parameters(json.loads(key.parameters))
        limit = "" if key.limit is None else f", limit={key.limit}"
        message = f"No snapshot of {key.label} on {key.url} with {asked}{limit} in {self.directory}"
        near = self.nearest(key)
        if near:
            message += f". The nearest differs: {near}."
        else:
            message += "; it holds no snapshot of this card at all."
        return SnapshotError(
            message,
            reason="missing",
            path=str(self.directory),
            next_steps=(NextStep(Step.RECORD_SNAPSHOT, ref=key.card_id),),
        )


def _provenance(massive: Any) -> dict[str, Any]:
    """The frame's provenance without anything that is not in PROVENANCE (no secrets)."""
    if not isinstance(massive, Mapping):
        return {}
    kept = {k: massive[k] for k in PROVENANCE if k in massive}
    if isinstance(kept.get("url"), str):
        kept["url"] = _without_credentials(kept["url"])
    return kept


def _without_credentials(url: str) -> str:
    """The URL as it was, minus any ``user:password@`` (the key drops them too)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _attrs(attrs: Mapping[Any, Any], massive: dict[str, Any]) -> dict[str, Any]:
    """``display_names``, ``metabase_types`` and the provenance, JSON-exact."""
    out: dict[str, Any] = {}
    for name in ("display_names", "metabase_types"):
        if name in attrs:
            out[name] = attrs[name]
    if "massive" in attrs:
        out["massive"] = massive
    try:
        if json.loads(json.dumps(out, allow_nan=False)) != out:
            raise ValueError("changed")
    except (TypeError, ValueError):
        raise SnapshotError(
            "A snapshot cannot keep this frame's attrs exactly, so none was written.",
            reason="unsupported",
        ) from None
    return out


def _key_of(body: Mapping[str, Any], path: Path) -> SnapshotKey:
    try:
        return SnapshotKey.from_identity(body["key"], name=body.get("name"))
    except (KeyError, TypeError, ValueError, ConfigError):
        raise damaged(path, "its manifest's key is incomplete") from None


def _prefix(key: SnapshotKey, name: str | None) -> str:
    """``497-earnings-by-country`` or ``d12-101-497-earnings-by-country``: readable, short."""
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")[:40].rstrip("-")
    head = (
        f"{key.card_id}"
        if key.dashboard_id is None
        else (f"d{key.dashboard_id}-{key.dashcard_id}-{key.card_id}")
    )
    return f"{head}-{slug}" if slug else head


def _recorded_at(fetched_at: Any) -> str | None:
    """The frame's fetched_at, if it is a date-time (normalised to UTC ``...Z``)."""
    try:
        moment = dt.datetime.fromisoformat(str(fetched_at).replace("Z", "+00:00"))
    except ValueError:
        return None
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc))
