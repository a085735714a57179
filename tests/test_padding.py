"""limit_whitespace: a run of whitespace past the limit is refused as it arrives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from massive_magic.errors import ResponseError
from massive_magic.padding import WHITESPACE_RUN_LIMIT, limit_whitespace


def test_limit_whitespace_refuses_padding_in_a_body_read_whole() -> None:
    padded = [b"\n" * (1 << 20)] * 17 + [b'{"data":{"rows":[]}}']
    with pytest.raises(ResponseError, match="16 MiB of whitespace in a row"):
        b"".join(limit_whitespace(padded))
    assert b"".join(limit_whitespace([b" " * 100, b"", b"{}"])) == b" " * 100 + b"{}"


def test_the_limit_is_refused_before_the_rest_is_read() -> None:
    taken = 0

    def endless() -> Iterator[bytes]:
        nonlocal taken
        while True:
            taken += 1
            yield b" " * (1 << 20)

    with pytest.raises(ResponseError, match="16 MiB of whitespace in a row"):
        for _ in limit_whitespace(endless()):
            pass
    assert taken == WHITESPACE_RUN_LIMIT // (1 << 20) + 1


@pytest.mark.parametrize("size", [1, 3, 10, 11, 64])
def test_runs_are_measured_across_chunks(size: int) -> None:
    fits = b"[" + b" " * 10 + b"]" + b"\t" * 10 + b"1"
    assert b"".join(limit_whitespace(_chunked(fits, size), max_run=10)) == fits
    with pytest.raises(ResponseError, match="more than 10 bytes of whitespace"):
        b"".join(limit_whitespace(_chunked(b"[" + b" " * 11 + b"]", size), max_run=10))


def _chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]
