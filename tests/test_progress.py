"""Progress lines: what they count, where they are drawn, what they leave behind.

``delay=0`` draws at once, so nothing here waits; a ``Terminal`` is a stderr that
says it is a terminal, a plain ``StringIO`` one that does not (a pipe, a log).
"""

from __future__ import annotations

import io
import threading

import pytest

from massive_magic.progress import CardsProgress, ReadProgress, _size, in_notebook


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def visible_line(out: str) -> str:
    """What a terminal shows last: the text after the last carriage return of the last line."""
    last = out.rstrip("\n").rsplit("\n", 1)[-1]
    return last.rstrip("\r").rsplit("\r", 1)[-1]


def test_not_in_a_notebook_here() -> None:
    assert in_notebook() is False


def test_a_read_line_shows_rows_bytes_and_time() -> None:
    terminal = Terminal()
    with ReadProgress(True, "Card 7", delay=0, file=terminal) as bar:
        assert bar.drawing
        bar.add_bytes(1_500)
        bar.set_rows(12_345)
        bar.tick()
        assert visible_line(terminal.getvalue()) == "Card 7: 12,345 rows, 1.5 kB, 00:00"
        bar.describe("Daily earnings")
        bar.add_bytes(2_000_000)
    assert (bar.bytes, bar.rows, bar.closed, bar.drawing) == (2_001_500, 12_345, True, False)
    out = terminal.getvalue()
    assert out.endswith("\n")  # a successful read leaves its final line
    assert visible_line(out) == "Daily earnings: 12,345 rows, 2.0 MB, 00:00"


def test_a_failed_read_leaves_no_line() -> None:
    terminal = Terminal()
    with pytest.raises(RuntimeError), ReadProgress(True, "Card 7", delay=0, file=terminal) as bar:
        bar.add_bytes(10)
        bar.tick()
        assert "Card 7: 0 rows, 10 B" in terminal.getvalue()
        raise RuntimeError("the read failed")
    out = terminal.getvalue()
    assert bar.closed and "\n" not in out
    assert visible_line(out).strip() == ""


@pytest.mark.parametrize(
    ("enabled", "file"), [(True, io.StringIO()), (False, Terminal()), (False, io.StringIO())]
)
def test_nothing_is_drawn_off_or_into_a_pipe(enabled: bool, file: io.StringIO) -> None:
    with ReadProgress(enabled, "Card 7", delay=0, file=file) as bar:
        bar.add_bytes(100)
        bar.set_rows(3)
        bar.tick()
        assert not bar.drawing
    assert file.getvalue() == ""
    assert (bar.bytes, bar.rows, bar.closed) == (100, 3, True)  # counted all the same


def test_no_line_before_the_delay() -> None:
    terminal = Terminal()
    with ReadProgress(True, "Card 7", delay=3600, file=terminal) as bar:
        bar.add_bytes(100)
        bar.tick()
    assert terminal.getvalue() == ""


def test_no_extra_thread_for_a_line() -> None:
    before = set(threading.enumerate())
    with ReadProgress(True, "Card 7", delay=0, file=Terminal()) as bar:
        bar.tick()
        started = set(threading.enumerate()) - before
    assert started == set()  # no tqdm monitor thread: the reader's own thread redraws


def test_cards_line() -> None:
    terminal = Terminal()
    with CardsProgress(True, "Partner overview", 3, delay=0, file=terminal) as bar:
        bar.done()
        bar.done()
        bar.tick()
        assert "Partner overview" in terminal.getvalue() and "2/3" in terminal.getvalue()
        bar.done()
    assert bar.done_count == 3 and bar.closed
    assert "3/3" in visible_line(terminal.getvalue())


def test_a_failed_dashboard_leaves_no_line() -> None:
    terminal = Terminal()
    with pytest.raises(KeyboardInterrupt), CardsProgress(True, "Board", 3, delay=0, file=terminal):
        raise KeyboardInterrupt
    assert visible_line(terminal.getvalue()).strip() == ""


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (999, "999 B"), (1_000, "1.0 kB"), (116_900_000, "116.9 MB"), (3e12, "3000.0 GB")],
)
def test_sizes(count: float, text: str) -> None:
    assert _size(int(count)) == text
