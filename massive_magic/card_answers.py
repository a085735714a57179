"""What Metabase's answers to a card mean: where they come from, and errors that name the card.

A card is read from ``/api/card/:id/query`` or, on a dashboard, from the dashcard's
path (:class:`QueryTarget`). Metabase answers a missing or forbidden card with
404/403, a failed query with 202/200 and ``"status": "failed"``, and parameters the
card no longer declares with a 500 "Invalid parameter". Each becomes an error that
names the card; Metabase's own words are quoted and end their sentence, and what to
do next is data (:class:`~massive_magic.errors.NextStep`), worded by each edge.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import (
    AccessDenied,
    CardNotFound,
    MassiveError,
    NextStep,
    NotFound,
    ParameterError,
    QueryFailed,
    ResponseError,
    Step,
)

__all__ = [
    "QueryTarget",
    "as_object",
    "card_errors",
    "check_row_count",
    "html_page",
    "is_invalid_parameter",
    "parameter_errors",
    "parse_json",
    "quote",
    "raise_if_failed",
    "server_url",
]


@dataclass(frozen=True)
class QueryTarget:
    """Where a result comes from: a saved card, or a card placed on a dashboard."""

    card_id: int
    dashboard_id: int | None = None
    dashcard_id: int | None = None

    @property
    def path(self) -> str:
        if self.dashboard_id is None:
            return f"/api/card/{self.card_id}/query"
        return (
            f"/api/dashboard/{self.dashboard_id}/dashcard/{self.dashcard_id}"
            f"/card/{self.card_id}/query"
        )

    @property
    def label(self) -> str:
        if self.dashboard_id is None:
            return f"Card {self.card_id}"
        return f"Card {self.card_id} on dashboard {self.dashboard_id}"


def server_url(session: Any) -> str:
    """The Metabase URL of ``session``, for messages (computed once per read)."""
    settings = getattr(session, "settings", None)
    return str(getattr(settings, "url", "") or "Metabase")


def quote(text: str) -> str:
    """Metabase's words, set apart from ours: “text” (one trailing period dropped)."""
    text = text.strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    return f"“{text}”"


def as_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseError(f"Metabase answered {path} with something other than an object.")
    return value


def parse_json(raw: bytes, target: QueryTarget, url: str) -> Any:
    """A complete JSON answer; an empty or cut-off one is a :class:`ResponseError`."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        what = "is empty" if not raw.strip() else "is not valid JSON (it may have been cut off)"
        raise ResponseError(
            f"{target.label}: the answer from {url} {what}; run it again.", url=url
        ) from None


_TITLE = re.compile(rb"<title>\s*([^<]{1,120}?)\s*</title>", re.IGNORECASE)


def html_page(target: QueryTarget, url: str, status: int, head: bytes) -> ResponseError:
    """A page where a JSON or CSV answer was due (an SSO sign-in, a proxy): say so."""
    match = _TITLE.search(head)
    title = f" ({quote(match.group(1).decode('utf-8', 'replace'))})" if match else ""
    return ResponseError(
        f"{target.label}: the server at {url} answered {status} with an HTML page{title}, "
        "probably a sign-in or proxy page, not Metabase's API. Check that the URL is "
        "Metabase's own address and that no sign-in stands in front of it.",
        status=status,
        url=url,
    )


def check_row_count(
    answer: Mapping[str, Any], received: int, target: QueryTarget, url: str
) -> None:
    """Metabase's own ``row_count`` must be there and match the rows that arrived."""
    count = answer.get("row_count")
    if isinstance(count, bool) or not isinstance(count, int):
        raise ResponseError(
            f"{target.label}: the answer from {url} has no row count, so it cannot be checked "
            "for completeness; Metabase always sends one.",
            url=url,
        )
    if count != received:
        raise ResponseError(
            f"{target.label}: Metabase announced {count} rows but sent {received}; run it again.",
            url=url,
        )


#: Edge-neutral advice per Metabase ``error_type`` (the rest goes in next steps).
_ADVICE = {
    "timed-out": "The query hit Metabase's time limit; narrow it with parameters.",
    "missing-required-permissions": "Ask a Metabase admin for access to the card's data.",
}
_MISSING = re.compile(r"pick a value for '([^']+)'")


def raise_if_failed(answer: Mapping[str, Any], target: QueryTarget, url: str) -> None:
    """Metabase answers a failed query with 202/200 and ``"status": "failed"``."""
    status = answer.get("status")
    if status in (None, "completed"):
        return
    error = answer.get("error")
    error_text = error if isinstance(error, str) and error else "Error running query"
    error_type = answer.get("error_type") if isinstance(answer.get("error_type"), str) else None
    steps: list[NextStep] = []
    advice = _ADVICE.get(error_type or "", "")
    if error_type == "missing-required-parameter":
        names = tuple(_MISSING.findall(error_text))
        if names:
            steps.append(NextStep(Step.GIVE_PARAMETER, ref=target.card_id, names=names))
        steps.append(NextStep(Step.SHOW_PARAMETERS, ref=target.card_id))
    elif error_type == "invalid-parameter":
        advice = "Check the parameter values."
        steps.append(NextStep(Step.SHOW_PARAMETERS, ref=target.card_id))
    elif not advice:
        advice = "Open the card in Metabase to see the same error."
    details = {
        k: answer[k] for k in ("class", "state", "error_type", "card_id", "status") if k in answer
    }
    message = f"{target.label} failed on {url}. Metabase's error: {quote(error_text)}."
    raise QueryFailed(
        f"{message} {advice}" if advice else message,
        error=error_text,
        error_type=error_type,
        card_id=target.card_id,
        details=details,
        next_steps=steps,
    )


def is_invalid_parameter(exc: MassiveError) -> bool:
    """Metabase's 500 for a parameter the card does not declare (any more)."""
    return (
        isinstance(exc, ResponseError) and exc.status == 500 and "Invalid parameter" in exc.message
    )


@contextmanager
def parameter_errors(target: QueryTarget, url: str) -> Iterator[None]:
    """A 500 "Invalid parameter" means the declarations we built from are stale."""
    try:
        yield
    except ResponseError as exc:
        if not is_invalid_parameter(exc):
            raise
        detail = quote(exc.message.split(": ", 1)[-1])
        if target.dashboard_id is None:
            raise ParameterError(
                f"{target.label} on {url}: Metabase answered {detail}. The card's parameters "
                "changed on the server since they were read.",
                next_steps=(NextStep(Step.REFRESH, ref=target.card_id),),
            ) from exc
        raise ParameterError(
            f"{target.label} on {url}: Metabase answered {detail}. Check the dashboard's "
            "filters in Metabase."
        ) from exc


@contextmanager
def card_errors(target: QueryTarget, url: str) -> Iterator[None]:
    """Translate 404/403 into errors that name the card."""
    try:
        yield
    except CardNotFound:
        raise
    except NotFound as exc:
        if target.dashboard_id is None:
            raise CardNotFound(
                f"Card {target.card_id} not found on {url}. Check the id in the card's URL "
                "(/question/<id>-…).",
                card_id=target.card_id,
                next_steps=(NextStep(Step.LIST_CARDS),),
            ) from exc
        raise CardNotFound(
            f"Card {target.card_id} is not on dashboard {target.dashboard_id} "
            f"(dashcard {target.dashcard_id}) on {url}: the dashboard changed since it was read.",
            card_id=target.card_id,
            next_steps=(NextStep(Step.READ_DASHBOARD, ref=target.dashboard_id),),
        ) from exc
    except AccessDenied as exc:
        raise AccessDenied(
            f"You may not read card {target.card_id} on {url} (Metabase answered 403). "
            "Ask a Metabase admin for access to its collection.",
            next_steps=(NextStep(Step.LIST_CARDS),),
        ) from exc
