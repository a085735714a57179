"""A Client's card reads through its snapshot directory (record, replay, auto).

:class:`SnapshotReads` is what ``Client.card`` and ``Client.dashboard`` consult
when ``snapshot_mode`` is not ``off``. It decides, per read, whether the frame
comes from disk or from Metabase, and records what a later replay needs:

=========  ==================================  =====================================
mode       a card's declarations, a layout     the frame
=========  ==================================  =====================================
record     live, recorded                      live, recorded
replay     recorded only (none: an error)      recorded only (none: an error)
auto       recorded, else live and recorded    recorded, else live and recorded
=========  ==================================  =====================================

So a replay builds exactly the key it recorded with and sends nothing at all.
``refresh=True`` means "live and recorded again" (an error in replay). After a
replay in ``auto`` with credentials, the card's ``updated_at`` (one
``GET /api/card/:id`` per card and Client) says whether it was edited since; that,
and relative dates in the parameters, become :class:`SnapshotWarning` notes.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .card_answers import QueryTarget
from .errors import MassiveError, NextStep, SnapshotError, SnapshotWarning, Step
from .metadata import Dashcard
from .snapshot_files import iso, parse_time
from .snapshot_keys import SnapshotMode, Target, describe_age, describe_parameters, snapshot_key
from .snapshot_meta import RecordedMetadata
from .snapshots import SnapshotStore

if TYPE_CHECKING:
    import pandas as pd

    from .settings import Settings

__all__ = ["ReplayLogin", "SnapshotReads", "emit"]

_RELATIVE = re.compile(r"^(?:today|yesterday|(?:this|last|next)[a-z]+|(?:past|next)\d+[a-z]+)")


@dataclass(frozen=True)
class ReplayLogin:
    """What ``Client.login()`` returns in replay: no login happened, nothing was sent."""

    url: str
    server: str  # what the snapshots are keyed by (the URL, or the sandbox's name)
    directory: Path
    username: str | None = None
    auth: str = "replay"

    def __str__(self) -> str:
        return (
            f"Replaying snapshots of {self.server} from {self.directory}: "
            "no login, nothing is sent."
        )


class SnapshotReads:
    """One Client's snapshot directory, mode and max age (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.snapshots is not None
        self.mode = settings.snapshot_mode
        self.directory = settings.snapshots
        self.max_age = settings.snapshot_max_age
        self.server = settings.snapshot_server or settings.url
        self.store = SnapshotStore(self.directory)
        self.meta = RecordedMetadata(self.directory, self.server)
        self._checked: set[int] = set()  # cards whose edit time was compared already

    @property
    def replaying(self) -> bool:
        return self.mode is SnapshotMode.REPLAY

    def login(self, settings: Settings) -> ReplayLogin:
        return ReplayLogin(settings.url, self.server, self.directory, settings.username)

    def check_refresh(self, refresh: bool) -> None:
        """``refresh=True`` reads live: in replay, an error that says why."""
        if refresh:
            self.refuse("Reading it again (refresh)")

    def refuse(self, what: str) -> None:
        """In replay, ``what`` (something only the server has) is an error."""
        if self.replaying:
            raise SnapshotError(
                f"{what} needs the Metabase server, but snapshots are being replayed from "
                f"{self.directory} (snapshot mode 'replay'): nothing is sent.",
                reason="replay",
                path=str(self.directory),
                next_steps=(NextStep(Step.LEAVE_REPLAY),),
            )

    # -- what a key is built from ----------------------------------------------------------

    def declarations(
        self,
        card_id: int,
        params: Mapping[str, Any],
        *,
        refresh: bool,
        live: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """The card (its ``parameters``) to build this read's parameter objects from."""
        if self.mode is not SnapshotMode.RECORD and not refresh:
            recorded = self.meta.card(card_id)
            if recorded is not None:
                return recorded
            if self.replaying:
                asked = ", ".join(f"{k}={v!r}" for k, v in params.items())
                raise SnapshotError(
                    f"No snapshot of card {card_id} on {self.server} with {asked} in "
                    f"{self.directory}: no read of this card with parameters was recorded "
                    "there (its parameter declarations are missing).",
                    path=str(self.directory),
                    next_steps=(NextStep(Step.RECORD_SNAPSHOT, ref=card_id),),
                )
        card = live()
        self.meta.save_card(card)
        return card

    def layout(self, dashboard_id: int, live: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The dashboard's filters and cards: recorded, or live (and then recorded)."""
        if self.mode is not SnapshotMode.RECORD:
            recorded = self.meta.dashboard(dashboard_id)
            if recorded is not None:
                return recorded
            if self.replaying:
                raise SnapshotError(
                    f"No snapshot of dashboard {dashboard_id} on {self.server} in "
                    f"{self.directory}: it was never recorded there.",
                    path=str(self.directory),
                    next_steps=(NextStep(Step.RECORD_SNAPSHOT, ref=dashboard_id),),
                )
        dashboard = live()
        self.meta.save_dashboard(dashboard)
        return dashboard

    # -- the reads ---------------------------------------------------------------------------

    def card(
        self,
        card_id: int,
        parameters: list[dict[str, Any]],
        limit: int | None,
        *,
        refresh: bool,
        fetch: Callable[[], pd.DataFrame],
        known: Callable[[], dict[str, Any] | None],
        current: Callable[[int], dict[str, Any]] | None,
        name: str | None,
    ) -> pd.DataFrame:
        """``Client.card``'s read: ``fetch()`` is the live one, after which ``known()``
        (the card's JSON, if the read learnt it) is recorded for later replays."""

        def live() -> pd.DataFrame:
            frame = fetch()
            card = known()
            if card is not None:
                self.meta.save_card(card)
            return frame

        notes: list[str] = []
        frame = self.read(
            card_id, parameters, limit, refresh=refresh, fetch=live, current=current, notes=notes,
            name=name,
        )  # fmt: skip
        emit(notes, stacklevel=3)
        return frame

    def dashcards(
        self,
        dashboard_id: int,
        parameters: list[dict[str, Any]],
        live: Callable[[Dashcard], pd.DataFrame],
        current: Callable[[int], dict[str, Any]] | None,
        notes: list[str],
        filters: list[dict[str, Any]],
    ) -> Callable[[Dashcard], pd.DataFrame]:
        """How ``Client.dashboard`` reads one of its cards (``live`` reads it from Metabase).

        ``filters`` are the dashboard's declarations: a miss names them by slug, not id.
        """
        slugs = {
            f"{f['id']}=": f"{f.get('slug') or f.get('name')}="
            for f in filters
            if isinstance(f, dict) and f.get("id") and (f.get("slug") or f.get("name"))
        }

        def read(e: Dashcard) -> pd.DataFrame:
            try:
                return self.read(
                    QueryTarget(e.card_id, dashboard_id, e.dashcard_id),
                    parameters,
                    None,
                    refresh=False,
                    fetch=lambda: live(e),
                    current=current,
                    notes=notes,
                    name=e.card_name,
                )
            except SnapshotError as exc:
                if exc.reason != "missing" or not slugs:
                    raise
                message = exc.message
                for old, new in slugs.items():
                    message = message.replace(old, new)
                raise SnapshotError(
                    message, reason=exc.reason, path=exc.path, next_steps=exc.next_steps
                ) from None

        return read

    def read(
        self,
        target: Target,
        parameters: list[dict[str, Any]],
        limit: int | None,
        *,
        refresh: bool,
        fetch: Callable[[], pd.DataFrame],
        current: Callable[[int], dict[str, Any]] | None,
        notes: list[str],
        name: str | None = None,
    ) -> pd.DataFrame:
        """One card read: from its snapshot, or ``fetch()`` (live) and recorded.

        ``current(card_id)`` gives the card as Metabase has it now (``auto``
        compares its ``updated_at``); None without credentials. Warnings go to
        ``notes``.
        """
        key = snapshot_key(self.server, target, parameters, limit, name=name)
        self.check_refresh(refresh)
        if self.replaying or (self.mode is SnapshotMode.AUTO and not refresh):
            try:
                frame = self.store.load(key, max_age=self.max_age)
            except SnapshotError as exc:
                if self.replaying or exc.reason not in ("missing", "expired"):
                    raise
            else:
                notes.extend(_relative_dates(frame, key.label))
                if self.mode is SnapshotMode.AUTO and current is not None:
                    notes.extend(self._edited(frame, key.card_id, key.label, current))
                return frame
        frame = fetch()
        self.store.save(key, frame)
        return frame

    def _edited(
        self,
        frame: pd.DataFrame,
        card_id: int,
        label: str,
        current: Callable[[int], dict[str, Any]],
    ) -> list[str]:
        """A note when the card was edited in Metabase after its snapshot was recorded."""
        if card_id in self._checked:
            return []
        self._checked.add(card_id)
        try:
            updated = parse_time(current(card_id).get("updated_at"))
        except (MassiveError, ValueError):
            return []  # no answer, no stamp: the replay stands without the comparison
        recorded = recorded_at(frame)
        if recorded is None or updated <= recorded:
            return []
        return [
            f"{label} was edited in Metabase on {iso(updated)}, after its snapshot was "
            f"recorded on {iso(recorded)}: the replayed frame may differ from what it answers "
            "now. Read it with refresh to record it anew."
        ]


def recorded_at(frame: pd.DataFrame) -> dt.datetime | None:
    """When a frame's data was read from Metabase (its ``fetched_at``), or None."""
    massive = frame.attrs.get("massive") or {}
    try:
        return parse_time(massive.get("fetched_at"))
    except ValueError:
        return None


def _relative_dates(frame: pd.DataFrame, label: str) -> list[str]:
    """A note when a replayed read's parameters hold relative dates (``past30days``)."""
    params = (frame.attrs.get("massive") or {}).get("parameters") or []
    relative = [
        p
        for p in params
        if isinstance(p, dict)
        and (
            p.get("type") == "date/relative"
            or any(_RELATIVE.match(v) for v in _texts(p.get("value")))
        )
    ]
    if not relative:
        return []
    when = recorded_at(frame)
    age = (
        f"{when:%Y-%m-%d} ({describe_age(dt.datetime.now(dt.timezone.utc) - when)} ago)"
        if when
        else "when it was recorded"
    )
    return [
        f"{label} is replayed from a snapshot of {age}: its relative dates "
        f"({describe_parameters(relative)}) were resolved then, not today."
    ]


def _texts(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v.strip().lower() for v in items if isinstance(v, str)]


def emit(notes: list[str], stacklevel: int = 2) -> None:
    """Each note as a :class:`SnapshotWarning`, attributed ``stacklevel`` frames up."""
    for note in notes:
        warnings.warn(note, SnapshotWarning, stacklevel=stacklevel + 1)
