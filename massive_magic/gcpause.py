"""Pause the cyclic garbage collector while building many acyclic objects.

Both the JSON row parser (``rowstream``) and the column builder (``builder``)
create millions of small lists and tuples in one go. None of them form cycles,
but every 700 new containers trigger a collection that walks them all again:
with the GC on, parsing and transposing take about twice as long.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off inside the block, back to its previous state after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
