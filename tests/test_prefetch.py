"""Prefetch: chunks read ahead in a thread, bounded, errors in the consumer, hang-up on exit.

No sockets here: the "body" is a generator, and "hanging up" is a callback that
wakes it the way closing a response wakes a reader blocked on its socket. Every
wait in these tests is bounded by state, never by a wall-time assertion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from massive_magic.prefetch import DeadlinePassed, Prefetch

WAIT = 10.0  # a safety bound on waits for another thread; never reached when all is well


class Body:
    """A body of ``total`` chunks; ``hang_up`` ends it like closing the connection."""

    def __init__(self, total: int = 1_000, *, stall_after: int | None = None) -> None:
        self.total = total
        self.stall_after = stall_after
        self.produced = 0
        self.consumed = 0
        self.max_lead = 0
        self.hang_ups = 0
        self.closed = threading.Event()
        self.changed = threading.Condition()

    def hang_up(self) -> None:
        self.hang_ups += 1
        self.closed.set()

    def chunks(self) -> Iterator[bytes]:
        for i in range(self.total):
            if self.closed.is_set():
                raise OSError("the connection was closed")
            if self.stall_after is not None and i >= self.stall_after:
                # a server that sends nothing more: the "socket read" blocks until hang-up
                if not self.closed.wait(WAIT):
                    raise AssertionError("nobody hung up")
                raise OSError("the connection was closed")
            with self.changed:
                self.produced += 1
                self.max_lead = max(self.max_lead, self.produced - self.consumed)
                self.changed.notify_all()
            yield b"%d," % i

    def took(self) -> None:
        with self.changed:
            self.consumed += 1
            self.changed.notify_all()

    def wait_for(self, produced: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.produced >= produced, WAIT)


def test_every_chunk_in_order() -> None:
    body = Body(50)
    with Prefetch(body.chunks(), body.hang_up) as chunks:
        got = list(chunks)
    assert got == [b"%d," % i for i in range(50)]
    assert body.hang_ups == 0  # read to the end: nothing to hang up


def test_an_error_of_the_reader_is_raised_in_the_consumer() -> None:
    def failing() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ValueError("cut")

    got = []
    with pytest.raises(ValueError, match="cut"), Prefetch(failing(), lambda: None) as chunks:
        for chunk in chunks:
            got.append(chunk)
    assert got == [b"a", b"b"]


def test_read_ahead_is_bounded_and_happens() -> None:
    body = Body(40)
    read_ahead = 3
    prefetch = Prefetch(body.chunks(), body.hang_up, read_ahead=read_ahead)
    with prefetch as chunks:
        for i, _ in enumerate(chunks):
            # the reader fills the queue and holds one more chunk before it blocks
            assert body.wait_for(min(body.total, i + 1 + read_ahead))
            body.took()
    # read ahead (the lead reached the queue size), and never further than the queue
    # plus the chunk in hand (plus one the consumer has taken but not yet counted)
    assert read_ahead <= body.max_lead <= read_ahead + 2


def test_leaving_early_hangs_up_and_stops_the_reader() -> None:
    body = Body(100_000)
    prefetch = Prefetch(body.chunks(), body.hang_up, read_ahead=2)
    with prefetch as chunks:
        for i, _ in enumerate(chunks):
            if i == 2:
                break
    assert body.hang_ups == 1
    assert not prefetch.reading
    assert body.produced < body.total


def test_leaving_early_wakes_a_reader_blocked_on_the_socket() -> None:
    body = Body(100, stall_after=3)
    prefetch = Prefetch(body.chunks(), body.hang_up)
    with prefetch as chunks:
        assert next(chunks) == b"0,"
    assert body.hang_ups == 1
    assert not prefetch.reading


def test_an_error_in_the_consumer_hangs_up_too() -> None:
    body = Body(100_000)
    prefetch = Prefetch(body.chunks(), body.hang_up, read_ahead=1)
    with pytest.raises(KeyError), prefetch as chunks:
        next(chunks)
        raise KeyError("the parser failed")
    assert body.hang_ups == 1
    assert not prefetch.reading


def test_the_deadline_bounds_the_wait_for_the_next_chunk() -> None:
    body = Body(100, stall_after=2)
    prefetch = Prefetch(body.chunks(), body.hang_up, deadline=time.monotonic() + 0.05)
    got = []
    with pytest.raises(DeadlinePassed), prefetch as chunks:
        for chunk in chunks:
            got.append(chunk)
    assert got == [b"0,", b"1,"]
    assert isinstance(DeadlinePassed(), TimeoutError)
    assert body.hang_ups == 1  # hung up at the deadline, which woke the stalled reader
    assert not prefetch.reading


def test_a_body_within_its_deadline_is_whole() -> None:
    body = Body(50)
    with Prefetch(body.chunks(), body.hang_up, deadline=time.monotonic() + WAIT) as chunks:
        got = list(chunks)
    assert got == [b"%d," % i for i in range(50)]
    assert body.hang_ups == 0
