"""Parsing JSON exactly, at orjson's speed where orjson is exact.

orjson turns integers beyond its exact range (``-2**63 .. 2**64-1``) into floats
without a word, so a text that holds a run of 20 digits (or a minus and 19) is
checked and, if any such literal is out of that range, parsed with the stdlib
``json`` module instead (exact Python ints). Numbers orjson refuses (``1e400``)
and lone surrogates go to the stdlib too.

The cyclic GC is paused while orjson builds the objects: rows are acyclic, and
with the GC on, parsing takes about twice as long.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from massive_magic.gcpause import gc_paused

__all__ = ["InvalidJSON", "loads_exact"]

# Integers orjson parses exactly: [-2**63, 2**64 - 1]. Only 20+ digits, or a minus
# sign and 19 digits, can fall outside (19-digit ids are common and fine): map
# digits and "-" to "0" and look for 20 in a row.
_DIGITS = bytes.maketrans(b"123456789-", b"0000000000")
_SUSPECT = b"0" * 20
_LONG_NUMBER = re.compile(rb"(?:^|[\[,:])[ \t\r\n]*(-?[0-9]{19,})(?![0-9.eE])")
_ORJSON_MIN, _ORJSON_MAX = -(2**63), 2**64 - 1


class InvalidJSON(Exception):
    """The text is not a JSON document (for a caller that tries another slice)."""


def loads_exact(text: bytes) -> Any:
    """Parse JSON exactly: orjson, or the stdlib where orjson would lose digits.

    Raises :class:`InvalidJSON` when the text is not a JSON document.
    """
    if _has_inexact_integer(text):
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidJSON(str(exc)) from exc
    try:
        with gc_paused():
            return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "number" not in exc.msg and "surrogate" not in exc.msg:
            raise InvalidJSON(exc.msg) from exc
    # 1e400 and lone surrogates: orjson refuses, the stdlib takes them.
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidJSON(str(exc)) from exc


def _has_inexact_integer(text: bytes) -> bool:
    """True when ``text`` may hold an integer literal orjson would turn into a float.

    A cheap scan (one translate, one find) rules out almost every batch; only a
    hit runs the exact regex and range check.
    """
    if text.translate(_DIGITS).find(_SUSPECT) < 0:
        return False
    for match in _LONG_NUMBER.finditer(text):
        digits = match.group(1)
        if len(digits) > 21:  # out of range; int() would refuse past 4300 digits
            return True
        if not _ORJSON_MIN <= int(digits) <= _ORJSON_MAX:
            return True
    return False
