"""Parse the body of a ``%%massive_card`` cell into card parameters.

Pure: no IPython, no HTTP. The notebook namespace comes in as a plain mapping,
so every rule below is tested without a shell.

One parameter per line::

    # comments and blank lines are skipped
    start_date = "2024-01-01"        # a JSON literal (string, number, list, true/false/null)
    Region     = EU                  # anything else is a bare string
    since      = {since}             # a whole-value {var} is the Python object itself
    label      = Week of {monday}    # inside a longer string it is formatted in
    note       = {{literal braces}}  # doubled braces stand for one brace

The name is everything before the first ``=`` (slug or display name; the card
layer matches it case-insensitively), so display names with spaces work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import ParameterError

__all__ = ["expand_vars", "parse_cell", "strip_comment"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_WHOLE_VAR = re.compile(rf"^\{{\s*({_IDENT})\s*\}}$")
_FIELD = re.compile(rf"\{{\{{|\}}\}}|\{{\s*({_IDENT})\s*\}}")
_MISSING = object()


def strip_comment(text: str) -> str:
    """``text`` without a trailing ``# comment`` (a ``#`` inside double quotes is kept).

    A ``#`` only starts a comment at the beginning or after whitespace, so
    values such as ``C#`` stay whole; quote a value that starts with ``#``.
    """
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].rstrip()
    return text.strip()


def _lookup(name: str, namespace: Mapping[str, Any], where: str) -> Any:
    value = namespace.get(name, _MISSING)
    if value is _MISSING:
        raise ParameterError(
            f"{where}: {{{name}}} is not defined in the notebook. "
            f"Run the cell that defines {name!r} first, or write the value itself."
        )
    return value


def expand_vars(
    text: str, namespace: Mapping[str, Any], *, where: str = "value", whole: bool = True
) -> Any:
    """``{var}`` substitution: the object itself for a whole value, else formatted in.

    With ``whole=False`` (a quoted JSON string) the result is always a string.
    """
    match = _WHOLE_VAR.match(text.strip()) if whole else None
    if match:
        return _lookup(match.group(1), namespace, where)

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return str(_lookup(match.group(1), namespace, where))

    return _FIELD.sub(replace, text)


def _parse_value(raw: str, namespace: Mapping[str, Any], where: str) -> Any:
    if not raw:
        raise ParameterError(
            f"{where}: the value is empty. Write a value after '=' (use \"\" for an empty string)."
        )
    if _WHOLE_VAR.match(raw):
        return expand_vars(raw, namespace, where=where)
    try:
        value = json.loads(raw)
    except ValueError:
        if raw.startswith('"'):
            raise ParameterError(
                f"{where}: {raw!r} starts with a quote but is not a valid JSON string. "
                "Close the quote, or drop the quotes for a bare string."
            ) from None
        value = raw
    if isinstance(value, str):
        # Formatted in: a quoted "{var}" stays a string (a bare {var} returned above).
        return expand_vars(value, namespace, where=where, whole=False)
    return value


def parse_cell(body: str, namespace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Card parameters from a cell body, in the order written.

    Raises :class:`ParameterError` naming the line and what to write instead.
    """
    namespace = {} if namespace is None else namespace
    params: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for number, line in enumerate(body.splitlines(), start=1):
        text = strip_comment(line)
        if not text:
            continue
        where = f"Line {number}"
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(
                f"{where} of the cell: {line.strip()!r} is not 'name = value'. "
                "Write one parameter per line, e.g. start_date = 2024-01-01."
            )
        key = name.casefold()
        if key in seen:
            raise ParameterError(
                f"{where}: parameter {name!r} is already set on line {seen[key]}. Keep one."
            )
        seen[key] = number
        params[name] = _parse_value(raw.strip(), namespace, f"{where} ({name})")
    return params
