"""The HTTP of one card read: POSTs to its query path, bodies read within one deadline.

:class:`CardRequests` sends ``POST <query path><suffix>`` streamed (a 404/403 names
the card; an HTML page is never taken for an answer) and reads each body ahead in
a thread (:mod:`~massive_magic.prefetch`), counted for the progress line, within
one deadline for the whole read: the session's read timeout, which otherwise
bounds only the gap between two socket reads. A connection cut mid-body and a
read past the deadline raise :class:`ResponseError`; nothing of the body is kept.
Leaving a body early hangs up (:func:`hang_up`), so the reader thread wakes now.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .card_answers import QueryTarget, card_errors, html_page
from .errors import NextStep, ResponseError, Step
from .padding import limit_whitespace
from .prefetch import DeadlinePassed, Prefetch
from .progress import ReadProgress

if TYPE_CHECKING:
    from .session import MetabaseSession

__all__ = ["CardRequests", "hang_up"]

_CHUNK = 1 << 20
#: Chunks read ahead of the parser (MiB): the download goes on while rows are converted.
_READ_AHEAD = 8


class CardRequests:
    """The requests of one read of ``target`` on ``session`` (``url`` names the server).

    :meth:`start` begins the read's clock: from then on every request and every
    chunk must come before ``timeout`` seconds have passed (None: no deadline).
    """

    def __init__(
        self,
        session: MetabaseSession,
        target: QueryTarget,
        url: str,
        bar: ReadProgress,
        timeout: float | None,
    ) -> None:
        self.session = session
        self.target = target
        self.url = url
        self.timeout = timeout
        self._bar = bar
        self._deadline: float | None = None

    def start(self, started: float) -> None:
        """The read began at ``started`` (``time.monotonic()``): the deadline counts from it."""
        if self.timeout is not None:
            self._deadline = started + self.timeout

    def send(self, suffix: str, **options: Any) -> Any:
        """``POST <query path><suffix>``, streamed; 404/403 name the card; never a page."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise self._too_slow()
        with card_errors(self.target, self.url):
            response = self.session.request(
                "POST", self.target.path + suffix, stream=True, **options
            )
        if "html" in str(response.headers.get("Content-Type", "")).lower():
            try:
                head = next(response.iter_content(64 * 1024), b"")
            except OSError:
                head = b""
            finally:
                response.close()
            raise html_page(self.target, self.url, response.status_code, head)
        return response

    @contextmanager
    def body(self, response: Any, *, json_body: bool) -> Iterator[Iterator[bytes]]:
        """The body read ahead in a thread, within the read's deadline; closed afterwards."""
        try:
            with Prefetch(
                self._chunks(response, json_body),
                lambda: hang_up(response),
                read_ahead=_READ_AHEAD,
                deadline=self._deadline,
            ) as chunks:
                yield chunks
        except DeadlinePassed:
            raise self._too_slow() from None
        finally:
            response.close()

    def whole(self, response: Any, *, json_body: bool) -> bytes:
        """The whole body at once (padding refused as it arrives, see :mod:`.padding`)."""
        with self.body(response, json_body=json_body) as chunks:
            return b"".join(limit_whitespace(chunks))

    def _chunks(self, response: Any, json_body: bool) -> Iterator[bytes]:
        """The body in chunks, counted for the progress line; a cut connection is an error."""
        first = json_body
        try:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                if not chunk:
                    continue
                if first:
                    first = False
                    if chunk.lstrip()[:1] == b"<":  # JSON never starts so; an HTML page does
                        raise html_page(self.target, self.url, response.status_code, chunk)
                self._bar.add_bytes(len(chunk))
                yield chunk
        except OSError as exc:  # requests' errors derive from OSError (IOError)
            raise ResponseError(
                f"{self.target.label}: the answer from {self.url} ended early "
                f"({type(exc).__name__}). Nothing was kept; run it again.",
                url=self.url,
            ) from None

    def _too_slow(self) -> ResponseError:
        return ResponseError(
            f"{self.target.label} did not finish within the timeout of {self.timeout:g} s "
            f"on {self.url}; nothing was kept.",
            url=self.url,
            next_steps=(NextStep(Step.RAISE_TIMEOUT),),
        )


def hang_up(response: Any) -> None:
    """Close ``response`` so that a thread blocked reading it wakes up now.

    Closing alone does not wake a ``recv`` in progress; urllib3 2.3+ can shut the
    socket down first (``raw.shutdown()``), which does.
    """
    shutdown = getattr(getattr(response, "raw", None), "shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(Exception):
            shutdown()
    response.close()
