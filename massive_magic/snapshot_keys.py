"""Snapshot keys, modes and ages: what a recorded card result matches. Pure, no files.

A key is the server URL, the card (plus dashboard and dashcard for a
dashboard's card), the parameters Metabase is sent and the ``limit``. The
parameters are compared in a canonical form: each object's keys sorted and the
list sorted by id, slug and target, so the order they were written in does not
matter; the values themselves are compared as sent (their order can matter:
``[min, max]``). Nothing near is ever taken for a match: :func:`differences`
only explains, in words, how a near key differs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from massive_magic.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SnapshotKey",
    "SnapshotMode",
    "canonical_parameters",
    "canonical_url",
    "describe_age",
    "describe_parameters",
    "differences",
    "parse_max_age",
    "parse_mode",
    "snapshot_key",
]


# -- modes and ages ----------------------------------------------------------------------------


class SnapshotMode(str, Enum):
    """What a card read does with snapshots.

    ``off``: live only. ``record``: live, then saved (replacing the same key's).
    ``replay``: from the snapshot only; none matching is an error. ``auto``: the
    snapshot when one matches (and is young enough), else live and saved.
    """

    OFF = "off"
    RECORD = "record"
    REPLAY = "replay"
    AUTO = "auto"


def parse_mode(value: str | SnapshotMode | None) -> SnapshotMode:
    """``"record"``, ``"replay"``, ``"auto"``, ``"off"`` (any case; None = off)."""
    if value is None:
        return SnapshotMode.OFF
    if isinstance(value, SnapshotMode):
        return value
    if isinstance(value, str):
        try:
            return SnapshotMode(value.strip().lower())
        except ValueError:
            pass
    choices = ", ".join(repr(m.value) for m in SnapshotMode)
    raise ConfigError(f"Snapshot mode must be one of {choices}, not {value!r}.")


_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")
_AGE_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_max_age(value: str | dt.timedelta | None) -> dt.timedelta | None:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"``, ``"1d12h"`` or a timedelta."""
    if value is None or isinstance(value, dt.timedelta):
        if value is not None and value < dt.timedelta(0):
            raise ConfigError(f"max_age cannot be negative, not {value}.")
        return value
    text = value.strip().lower().replace(" ", "") if isinstance(value, str) else ""
    parts = _AGE_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ConfigError(
            f"max_age must be a timedelta or a duration such as '7d', '12h', '30m' or "
            f"'1d12h', not {value!r}."
        )
    return sum((dt.timedelta(**{_AGE_UNITS[u]: float(n)}) for n, u in parts), start=dt.timedelta(0))


def describe_age(age: dt.timedelta) -> str:
    """``3 days 4 hours``, ``12 minutes``, ``5 seconds``: the two largest units."""
    seconds = max(0, int(age.total_seconds()))
    units = [("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)]
    parts = []
    for label, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {label}{'s' if count != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"


# -- keys ----------------------------------------------------------------------------------------


class _Target(Protocol):
    """What ``cards.QueryTarget`` has (any object with these three attributes)."""

    @property
    def card_id(self) -> int: ...
    @property
    def dashboard_id(self) -> int | None: ...
    @property
    def dashcard_id(self) -> int | None: ...


Target = int | tuple[int, int, int] | _Target


@dataclass(frozen=True)
class SnapshotKey:
    """What a snapshot matches: URL, card (on a dashboard), parameters, limit.

    ``parameters`` is canonical JSON text (see :func:`canonical_parameters`).
    ``name`` is the card's name, for file names and messages only: it takes no
    part in matching.
    """

    url: str
    card_id: int
    dashboard_id: int | None
    dashcard_id: int | None
    parameters: str
    limit: int | None
    name: str | None = field(default=None, compare=False)

    def identity(self) -> dict[str, Any]:
        """The key as stored in the manifest (everything that takes part in matching)."""
        return {
            "url": self.url,
            "card_id": self.card_id,
            "dashboard_id": self.dashboard_id,
            "dashcard_id": self.dashcard_id,
            "parameters": json.loads(self.parameters),
            "limit": self.limit,
        }

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical identity: the file names carry its first 16 digits."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def label(self) -> str:
        """``card 497 ('Name')``, or ``card 497 on dashboard 12 (dashcard 101)``."""
        text = f"card {self.card_id}" + (f" ({self.name!r})" if self.name else "")
        if self.dashboard_id is not None:
            text += f" on dashboard {self.dashboard_id} (dashcard {self.dashcard_id})"
        return text

    @classmethod
    def from_identity(cls, data: Mapping[str, Any], name: str | None = None) -> SnapshotKey:
        return snapshot_key(
            data["url"],
            (data["dashboard_id"], data["dashcard_id"], data["card_id"])
            if data.get("dashboard_id") is not None
            else data["card_id"],
            data["parameters"],
            data["limit"],
            name=name,
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> SnapshotKey:
        """The key of a frame ``Client.card``/``Client.dashboard`` returned (its provenance)."""
        massive = frame.attrs.get("massive") or {}
        try:
            return cls.from_identity(massive, name=massive.get("name"))
        except KeyError as exc:
            raise ConfigError(
                f"This frame has no {exc.args[0]!r} in attrs['massive']; pass the key explicitly."
            ) from None


def snapshot_key(
    url: str,
    target: Target,
    parameters: Sequence[Mapping[str, Any]] | str | None,
    limit: int | None,
    *,
    name: str | None = None,
) -> SnapshotKey:
    """The key of one card read: exactly what ``Client.card`` would send.

    ``target``: a card id, ``(dashboard_id, dashcard_id, card_id)`` or a
    ``cards.QueryTarget``. ``parameters``: Metabase parameter objects (or their
    JSON text).
    """
    board: Any = None
    dash: Any = None
    if isinstance(target, tuple) and len(target) == 3:
        board, dash, card = target
    elif hasattr(target, "card_id"):
        query: Any = target
        board, dash, card = query.dashboard_id, query.dashcard_id, query.card_id
    else:
        card = target
    placed = board is not None or dash is not None
    if not (_is_id(card) and (not placed or (_is_id(board) and _is_id(dash)))):
        raise ConfigError(
            "A snapshot target is a card id, (dashboard id, dashcard id, card id) or a "
            f"QueryTarget, not {target!r}."
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise ConfigError(f"limit must be a whole number of rows or None, not {limit!r}.")
    return SnapshotKey(
        canonical_url(url), card, board, dash, canonical_parameters(parameters), limit, name
    )


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def canonical_url(url: str) -> str:
    """Scheme and host in lower case, no credentials, no trailing slash."""
    parts = urlsplit(str(url).strip())
    host = (parts.hostname or "").lower()
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), parts.query, ""))


def canonical_parameters(parameters: Sequence[Mapping[str, Any]] | str | None) -> str:
    """Parameter objects as JSON text: keys sorted, the list sorted by id, slug, target.

    Values are kept as given (their order can matter: ``[min, max]``); tuples
    are lists and dates ISO text, as the client sends them.
    """
    if parameters is None:
        items: list[Any] = []
    elif isinstance(parameters, str):
        try:
            items = json.loads(parameters or "[]")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Snapshot parameters are not JSON: {exc}") from None
    else:
        items = [dict(p) for p in parameters]
    if not isinstance(items, list) or not all(isinstance(p, dict) for p in items):
        raise ConfigError("Snapshot parameters must be a list of Metabase parameter objects.")
    texts = [_json(p) for p in items]
    order = sorted(
        range(len(items)),
        key=lambda i: (
            str(items[i].get("id", "")),
            str(items[i].get("slug", "")),
            _json(items[i].get("target")),
            texts[i],
        ),
    )
    return "[" + ",".join(texts[i] for i in order) + "]"


def _json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON")


def describe_parameters(parameters: Sequence[Mapping[str, Any]]) -> str:
    """``country=['US'], date='2024-01-01~2024-01-31'`` or ``no parameters``."""
    if not parameters:
        return "no parameters"
    return ", ".join(f"{_param_name(p)}={p.get('value')!r}" for p in parameters)


def _param_name(parameter: Mapping[str, Any]) -> str:
    """slug, else the template tag or field its target names, else the id."""
    if parameter.get("slug"):
        return str(parameter["slug"])
    named = _target_name(parameter.get("target"))
    return named if named is not None else str(parameter.get("id", "?"))


def _target_name(target: Any) -> str | None:
    """``country`` of ``["dimension", ["template-tag", "country"]]`` (or a field id)."""
    if not isinstance(target, list) or not target:
        return None
    if target[0] in ("template-tag", "field") and len(target) > 1:
        return str(target[1])
    return next((n for n in map(_target_name, target[1:]) if n is not None), None)


def differences(recorded: SnapshotKey, asked: SnapshotKey) -> list[str]:
    """How a recorded key differs from the one asked for, in words (empty: none)."""
    out = []
    if recorded.url != asked.url:
        out.append(f"recorded on another server URL ({recorded.url}), asked {asked.url}")
    if (recorded.dashboard_id, recorded.dashcard_id) != (asked.dashboard_id, asked.dashcard_id):
        out.append(f"recorded {_placement(recorded)}, asked {_placement(asked)}")
    if recorded.parameters != asked.parameters:
        out.append(_parameter_difference(recorded, asked))
    if recorded.limit != asked.limit:
        out.append(f"recorded with limit={recorded.limit!r}, asked limit={asked.limit!r}")
    return out


def _placement(key: SnapshotKey) -> str:
    if key.dashboard_id is None:
        return "as the card itself"
    return f"on dashboard {key.dashboard_id} (dashcard {key.dashcard_id})"


def _parameter_difference(recorded: SnapshotKey, asked: SnapshotKey) -> str:
    had = {_param_name(p): p for p in json.loads(recorded.parameters)}
    want = {_param_name(p): p for p in json.loads(asked.parameters)}
    names = [n for n in [*had, *want] if _json(had.get(n)) != _json(want.get(n))]
    names = list(dict.fromkeys(names))

    def side(params: dict[str, Any]) -> str:
        return ", ".join(
            f"{n}={params[n].get('value')!r}" if n in params else f"{n} unset" for n in names
        )

    return f"recorded with {side(had)}, asked {side(want)}"
