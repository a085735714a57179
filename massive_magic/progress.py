"""Progress lines for card and dashboard reads; the one home of tqdm.

A line appears only for a read that takes longer than ``delay`` (a second):

* a card: ``Card 507: 250,000 rows, 29.2 MB, 00:03`` -- rows received, bytes
  received and the time since the read began (the server may think for a while
  before the first byte, so the time is what moves first);
* a dashboard: tqdm's own ``Partner overview: 67%|██████▋   | 2/3 [00:02<00:01, 1.0card/s]``.

``tqdm.auto`` draws them: a widget in Jupyter, a line on a terminal. A stderr that
is not a terminal (a log file, a pipe, CI) outside a notebook gets nothing: a
progress line there is a stream of carriage returns, not information. A read that
fails leaves no line behind (the error says what happened); one that succeeds
leaves its final line.

Both objects count whether or not a line is drawn, and are safe to update from the
reader thread and the ticking thread at once.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

__all__ = ["CardsProgress", "ReadProgress", "in_notebook"]


def in_notebook() -> bool:
    """Whether ``tqdm.auto`` draws Jupyter widgets here (an IPython kernel with ipywidgets)."""
    from tqdm.auto import tqdm

    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


def _visible(file: TextIO | None) -> bool:
    if in_notebook():
        return True
    stream = file if file is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _size(count: int) -> str:
    """Bytes for people: ``0 B``, ``512 B``, ``12.3 kB``, ``116.9 MB``."""
    if count < 1000:
        return f"{count} B"
    value = float(count)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


@functools.cache
def _bar_class() -> type[Any]:
    """tqdm.auto's class, with a ``rows`` counter and without tqdm's monitor thread."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        monitor_interval = 0  # no extra thread per process: we redraw ourselves
        rows = 0

        @property
        def format_dict(self) -> dict[str, Any]:
            values = dict(super().format_dict)
            values["rows"] = f"{self.rows:,}"
            values["size"] = _size(int(values.get("n") or 0))
            return values

    return Bar


class _Line:
    """A tqdm bar opened on ``__enter__`` (if enabled and visible), closed on ``__exit__``."""

    def __init__(self, enabled: bool, *, delay: float, file: TextIO | None) -> None:
        self.enabled = enabled
        self.delay = delay
        self.file = file
        self.closed = False
        self._bar: Any = None
        self._opened = 0.0
        self._lock = threading.Lock()

    @property
    def drawing(self) -> bool:
        """Whether a line is (or may soon be) drawn; nothing to redraw otherwise."""
        return self._bar is not None

    def _open(self, **options: Any) -> None:
        if self.enabled and _visible(self.file):
            self._opened = time.monotonic()
            self._bar = _bar_class()(file=self.file, delay=self.delay, leave=True, **options)

    def tick(self) -> None:
        """Redraw once the delay has passed (the elapsed time moves while nothing arrives)."""
        with self._lock:
            if self._bar is not None and time.monotonic() - self._opened >= self.delay:
                self._bar.refresh()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            bar, self._bar = self._bar, None
            self.closed = True
            if bar is not None:
                bar.leave = exc_type is None  # a failed read leaves no line behind
                bar.close()


class ReadProgress(_Line):
    """Rows, bytes and elapsed time of one card read."""

    def __init__(
        self, enabled: bool, desc: str, *, delay: float = 1.0, file: TextIO | None = None
    ) -> None:
        super().__init__(enabled, delay=delay, file=file)
        self.desc = desc
        self.bytes = 0
        self.rows = 0

    def __enter__(self) -> ReadProgress:
        if self.enabled:
            # In Jupyter the text right of the widget's (info) bar; on a terminal one line.
            shape = "{desc}{bar}" if in_notebook() else "{desc}: "
            self._open(desc=self.desc, bar_format=shape + "{rows} rows, {size}, {elapsed}")
        return self

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes += count
            if self._bar is not None:
                self._bar.update(count)

    def set_rows(self, count: int) -> None:
        with self._lock:
            self.rows = count
            if self._bar is not None:
                self._bar.rows = count

    def describe(self, desc: str) -> None:
        """Name the card (its name may arrive after the read began)."""
        with self._lock:
            self.desc = desc
            if self._bar is not None:
                self._bar.set_description_str(desc, refresh=False)


class CardsProgress(_Line):
    """Cards done out of a dashboard's cards."""

    def __init__(
        self,
        enabled: bool,
        desc: str,
        total: int,
        *,
        delay: float = 1.0,
        file: TextIO | None = None,
    ) -> None:
        super().__init__(enabled, delay=delay, file=file)
        self.desc = desc
        self.total = total
        self.done_count = 0

    def __enter__(self) -> CardsProgress:
        self._open(desc=self.desc, total=self.total, unit="card")
        return self

    def done(self) -> None:
        with self._lock:
            self.done_count += 1
            if self._bar is not None:
                self._bar.update(1)
