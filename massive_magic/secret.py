"""A secret string (password, session token, API key) that never shows itself.

``repr`` and ``str`` are ``<hidden>``, so a Secret in a local variable, a dict of
headers, a dataclass or a log argument shows nothing; a traceback printed with
its locals (IPython's verbose mode, pytest's ``--showlocals``, Sentry) shows no
secret. The value comes out only through :meth:`Secret.reveal`, called inside the
expression that puts it on the wire.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Secret"]


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` are ``<hidden>``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value, for the one place that sends it or scrubs it from server text."""
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a Secret is not pickled")
