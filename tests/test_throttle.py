"""Login-throttle memory: the pure helpers, and a lockout over the sandbox's real HTTP.

The session's clock is the sandbox's clock, frozen, so every time in a message is exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from massive_magic.errors import CacheWarning, LoginThrottled, NextStep, Step
from massive_magic.session import MetabaseSession
from massive_magic.settings import ENV_API_KEY, Settings
from massive_magic.throttle import (
    MAX_REMEMBERED_WAIT,
    THROTTLE_FALLBACK,
    duration,
    is_throttle_message,
    plausible,
    throttle_wait,
    throttled_until,
    utc,
)
from massive_magic.token_store import TokenEntry, TokenStore

LOGIN = ("POST", "/api/session")
ME = "/api/user/current"


# -- pure helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "wait"),
    [
        ("Too many attempts! You must wait 15 seconds before trying again.", 15.0),
        ("Too many attempts! You must wait 16339 seconds before trying again.", 16339.0),
        ("Too many attempts! You must wait 16,339 seconds before trying again.", 16339.0),
        ("Too many attempts! You must wait 1 second before trying again.", 1.0),
        ("username: Too many attempts! You must wait 42 seconds before trying again.", 42.0),
        ("Too many attempts! Please try again later.", None),
    ],
)
def test_throttle_wait(message: str, wait: float | None) -> None:
    assert is_throttle_message(message)
    assert throttle_wait(message) == wait


@pytest.mark.parametrize(
    "message", ["password: did not match stored password", "Your account is disabled.", "", None]
)
def test_other_login_errors_are_not_throttling(message: str | None) -> None:
    assert not is_throttle_message(message)


@pytest.mark.parametrize(
    ("wait", "until"), [(15.0, 1015.0), (16339.0, 17339.0), (None, 1000.0 + THROTTLE_FALLBACK)]
)
def test_throttled_until(wait: float | None, until: float) -> None:
    assert throttled_until(1000.0, wait) == until
    assert THROTTLE_FALLBACK == 3600.0


@pytest.mark.parametrize(
    ("until", "fine"),
    [
        (None, True),
        (1000.0 + 3600, True),
        (1000.0 + MAX_REMEMBERED_WAIT, True),
        (1000.0 + MAX_REMEMBERED_WAIT + 1, False),
        (1e12, False),
        (1e308, False),
        (math.inf, False),
        (math.nan, False),
    ],
)
def test_plausible(until: float | None, fine: bool) -> None:
    assert plausible(until, 1000.0) is fine


@pytest.mark.parametrize(("seconds", "text"), [(15, "15 s"), (600, "10 min"), (16339, "4.5 h")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# -- over the sandbox --------------------------------------------------------------------


@pytest.fixture
def make_session(sandbox: Any, tmp_path: Path) -> Iterator[Callable[..., MetabaseSession]]:
    made: list[MetabaseSession] = []

    def make(username: str, password: str) -> MetabaseSession:
        settings = Settings(
            url=sandbox.url, username=username, password=password, cache_dir=tmp_path / "c"
        )
        session = MetabaseSession(settings, clock=sandbox.clock.now, backoff_factor=0.01)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


def lock_out(srv: Any, username: str) -> None:
    """Ten wrong passwords sent straight to the sandbox (not through the client)."""
    for _ in range(10):
        answer = requests.post(
            f"{srv.url}/api/session", json={"username": username, "password": "no"}, timeout=10
        )
        assert answer.status_code == 401


def test_lockout_says_what_metabase_does_and_when_this_client_tries_again(
    sandbox: Any, make_session: Callable[..., MetabaseSession]
) -> None:
    user = "locked@partner.example"
    sandbox.add_user(user, "right")
    sandbox.clock.freeze()
    lock_out(sandbox, user)
    session = make_session(user, "right")
    with pytest.raises(LoginThrottled) as caught:
        session.login()
    until = utc(sandbox.clock.now() + 15)
    message = caught.value.message
    assert "(it says: wait 15 s)" in message
    assert "After the wait it takes one attempt; a wrong one extends the lock" in message
    assert "clears one hour after the last one" in message
    assert f"before {until:%Y-%m-%d %H:%M:%S} UTC" in message
    assert "lifts after an hour" not in message  # the old, self-contradicting wording
    assert caught.value.next_steps == (
        NextStep(Step.WAIT_THEN_LOGIN),
        NextStep(Step.USE_API_KEY, names=(ENV_API_KEY,)),
    )
    assert sandbox.count(*LOGIN) == 11
    # Remembered: the same words and time, and no login sent.
    with pytest.raises(LoginThrottled) as again:
        make_session(user, "right").login()
    assert f"before {until:%Y-%m-%d %H:%M:%S} UTC" in again.value.message
    assert "no login was sent (15 s left of the wait)" in again.value.message
    assert sandbox.count(*LOGIN) == 11


@pytest.mark.parametrize("until", [1e12, 1e308, math.nan, math.inf])
def test_an_absurd_remembered_lock_is_ignored_with_a_warning(
    sandbox: Any, make_session: Callable[..., MetabaseSession], tmp_path: Path, until: float
) -> None:
    store = TokenStore(tmp_path / "c")
    store.save(sandbox.url, sandbox.username, TokenEntry(throttled_until=0.0))
    path = store.path_for(sandbox.url, sandbox.username)
    path.write_text(
        path.read_text().replace(
            '"throttled_until": 0.0', f'"throttled_until": {json.dumps(until)}'
        )
    )
    session = make_session(sandbox.username, sandbox.password)
    with pytest.warns(CacheWarning):
        info = session.login()  # never ValueError, OverflowError or OSError
    assert info.reused is False
    assert sandbox.count(*LOGIN) == 1
    entry = store.load(sandbox.url, sandbox.username)
    assert entry is not None and entry.throttled_until is None  # a fresh entry
