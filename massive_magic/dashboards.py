"""Reading every card of a dashboard concurrently, keeping each card's error apart.

:func:`read_dashboard` is ``Client.dashboard``'s fan-out: a small thread pool
reads the dashboard's cards (each one request through its dashcard, live or
through the snapshots), a progress bar counts them, and the frames come back in
the dashboard's order. A card that fails does not lose the others: its
:class:`MassiveError` is kept under its name and a :class:`MassiveWarning` names
it. An :class:`AuthError` (or any other exception) stops the whole read: the
cards not started yet are cancelled.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from .card_answers import QueryTarget
from .errors import AuthError, MassiveError, MassiveWarning
from .metadata import DashboardResult, Dashcard
from .outputs import PANDAS, Output
from .progress import CardsProgress
from .reader import run_query
from .snapshot_reads import SnapshotReads, emit

if TYPE_CHECKING:
    from .session import MetabaseSession

__all__ = ["read_dashboard"]


def read_dashboard(
    session: MetabaseSession | None,
    did: int,
    dash: dict[str, Any],
    entries: list[Dashcard],
    parameters: list[dict[str, Any]],
    *,
    output: Output,
    max_workers: int,
    progress: bool,
    reads: SnapshotReads | None = None,
    ask: Callable[[int], dict[str, Any]] | None = None,
) -> DashboardResult:
    """The cards ``entries`` of dashboard ``did`` (its JSON ``dash``), read concurrently.

    ``session`` reads live (None only when ``reads`` replays); ``ask`` looks a card
    up for the snapshots' checks (None: Metabase cannot be asked without a prompt).
    Warnings (snapshot notes, failed cards) are attributed to the caller's caller.
    """
    frames: dict[str, Any] = {}
    errors: dict[str, MassiveError] = {}
    notes: list[str] = []
    if entries:
        filters = dash.get("parameters") or []
        live = _live_reader(session, did, dash, parameters, output if reads is None else PANDAS)
        read = (
            live if reads is None else reads.dashcards(did, parameters, live, ask, notes, filters)
        )
        title = dash.get("name") or f"Dashboard {did}"
        with (
            CardsProgress(progress, title, len(entries)) as bar,
            ThreadPoolExecutor(
                max_workers=min(max_workers, len(entries)), thread_name_prefix="massive-dash"
            ) as pool,
        ):
            futures = {pool.submit(read, e): e for e in entries}
            try:
                for future in as_completed(futures):
                    bar.done()
                    try:
                        frames[futures[future].key] = future.result()
                    except AuthError:
                        raise
                    except MassiveError as exc:
                        errors[futures[future].key] = exc
            except BaseException:
                for other in futures:
                    other.cancel()
                raise
        frames = {e.key: frames[e.key] for e in entries if e.key in frames}  # display order
        if reads is not None:  # snapshots hold pandas frames
            frames = {key: output.from_frame(frame) for key, frame in frames.items()}
    result = DashboardResult(frames, errors, dashboard_id=did, name=dash.get("name"))
    emit(notes, stacklevel=3)
    if errors:
        listed = "; ".join(f"{k!r}: {type(v).__name__}: {v}" for k, v in errors.items())
        warnings.warn(
            f"{len(errors)} of {len(entries)} cards of dashboard {did} failed and are "
            f"missing from the result ({listed}). The others are returned; "
            "see result.errors.",
            MassiveWarning,
            stacklevel=3,
        )
    return result


def _live_reader(
    session: MetabaseSession | None,
    did: int,
    dash: dict[str, Any],
    parameters: list[dict[str, Any]],
    output: Output,
) -> Callable[[Dashcard], Any]:
    """How one card of dashboard ``did`` is read from Metabase (through its dashcard)."""

    def live(e: Dashcard) -> Any:
        assert session is not None
        target = QueryTarget(e.card_id, did, e.dashcard_id)
        card = dict(e.card) if e.card is not None else None
        return run_query(
            session,
            target,
            parameters,
            progress=False,
            name=e.card_name,
            card=card,
            dashboard=dash,
            output=output,
        )

    return live
