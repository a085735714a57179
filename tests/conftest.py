"""Shared fixtures: one sandbox server per test session, reset before every test.

Every test talks to ``sandbox`` over real HTTP on 127.0.0.1 (port chosen by the OS).
``MASSIVE_MAGIC_CACHE_DIR`` points at a temporary directory for the whole session so no
test ever touches the real token cache in the user's home.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from massive_magic.sandbox import Sandbox

_SESSION_CACHE = tempfile.TemporaryDirectory(prefix="massive-magic-test-cache-")
os.environ["MASSIVE_MAGIC_CACHE_DIR"] = _SESSION_CACHE.name
# A developer's real Metabase settings must never leak into a test.
for _name in (
    "MASSIVE_METABASE_URL",
    "MASSIVE_METABASE_EMAIL",
    "MASSIVE_METABASE_PASSWORD",
    "MASSIVE_METABASE_API_KEY",
):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    """The session-wide sandbox (use ``sandbox`` in tests: it is reset first)."""
    from massive_magic import sandbox as sandbox_module

    with sandbox_module.start(port=0) as srv:
        yield srv


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The running sandbox with faults, log, clock, throttles and extra cards/users reset."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty token-cache directory for one test (also set in the environment)."""
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("MASSIVE_MAGIC_CACHE_DIR", str(path))
    return path
