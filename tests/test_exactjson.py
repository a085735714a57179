"""loads_exact: orjson's speed, the stdlib's exactness where orjson would lose digits."""

from __future__ import annotations

import pytest

from massive_magic.exactjson import InvalidJSON, loads_exact


@pytest.mark.parametrize(
    "value",
    [2**64 - 1, -(2**63), 2**64, -(2**63) - 1, 12345678901234567890123, 9007199254740993],
)
def test_integers_are_exact(value: int) -> None:
    got = loads_exact(f"[[{value}, 1.5, null]]".encode())
    assert got == [[value, 1.5, None]]
    assert isinstance(got[0][0], int)


def test_what_orjson_refuses_the_stdlib_takes() -> None:
    assert loads_exact(b"[1e400]") == [float("inf")]
    assert loads_exact(b'["\\ud800"]') == ["\ud800"]


@pytest.mark.parametrize("text", [b"", b"[1,", b'{"a":', b"[" + b"9" * 5000 + b"]"])
def test_invalid_text_raises_invalid_json(text: bytes) -> None:
    with pytest.raises(InvalidJSON):
        loads_exact(text)
