"""Read a body's chunks in a thread, so the download overlaps with parsing.

Socket reads release the GIL, so while the consumer turns one batch into columns
the next megabytes keep arriving instead of waiting in the server's send buffer.

Nothing polls: the reader blocks on the socket and on a bounded queue, the
consumer blocks on the queue (until its deadline, if it has one). The reader
always ends with a sentinel, or with the exception it met, which the consumer
raises. Leaving early (a limit reached, an error, the deadline) calls ``hang_up``,
which closes the response so that a reader blocked on the socket wakes up, and
empties the queue so that a reader blocked on a full queue wakes up; then it is
joined.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["DeadlinePassed", "Prefetch"]

#: Put by the reader after the last chunk.
_END = object()


class DeadlinePassed(TimeoutError):
    """The next chunk did not arrive before the consumer's deadline."""


class Prefetch:
    """``with Prefetch(chunks, hang_up) as body: for chunk in body: ...``.

    At most ``read_ahead`` chunks are held. ``deadline`` (a ``time.monotonic()``
    value) bounds the wait for the next chunk: past it the consumer raises
    :class:`DeadlinePassed` (and leaving the block hangs up).
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        hang_up: Callable[[], None],
        *,
        read_ahead: int = 8,
        deadline: float | None = None,
    ) -> None:
        self._chunks = chunks
        self._hang_up = hang_up
        self._deadline = deadline
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, read_ahead))
        self._stop = threading.Event()
        self._finished = False  # the consumer took the reader's last item
        self._thread = threading.Thread(target=self._read, name="massive-read", daemon=True)

    def __enter__(self) -> Iterator[bytes]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if not self._finished:
            # Leaving early: hang up rather than wait for more bytes, then make room
            # so a reader blocked on a full queue can see the stop.
            with contextlib.suppress(Exception):
                self._hang_up()
            self._drain()
        self._thread.join()

    @property
    def reading(self) -> bool:
        """Whether the reader thread is still running (for tests)."""
        return self._thread.is_alive()

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def _read(self) -> None:
        try:
            for chunk in self._chunks:
                self._queue.put(chunk)
                if self._stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            if not self._stop.is_set():
                self._queue.put(exc)
            return
        self._queue.put(_END)

    def _consume(self) -> Iterator[bytes]:
        while True:
            item = self._next()
            if item is _END:
                self._finished = True
                return
            if isinstance(item, BaseException):
                self._finished = True
                raise item
            yield item

    def _next(self) -> Any:
        if self._deadline is None:
            return self._queue.get()
        remaining = self._deadline - time.monotonic()
        try:
            if remaining <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=remaining)
        except queue.Empty:
            raise DeadlinePassed("the body did not arrive before the deadline") from None
