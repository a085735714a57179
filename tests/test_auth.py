"""Authentication schemes over the sandbox's real HTTP: whose password, whose session.

Logins and token checks are counted on the server.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests

from massive_magic.auth import ApiKeyAuth
from massive_magic.errors import AuthError, CacheWarning, NotFound, ResponseError
from massive_magic.login import SessionLogin
from massive_magic.session import MetabaseSession, read_json
from massive_magic.settings import ENV_EMAIL, ENV_PASSWORD, Settings
from massive_magic.token_store import TokenEntry, TokenStore

LOGIN = ("POST", "/api/session")
ME = "/api/user/current"
OTHER, OTHER_PASSWORD = "other@partner.example", "other-password"

SessionFactory = Callable[..., MetabaseSession]


@pytest.fixture
def make_session(sandbox: Any, tmp_path: Path) -> Iterator[SessionFactory]:
    """Sessions on the sandbox, sharing one cache directory; settings may be overridden."""
    made: list[MetabaseSession] = []

    def make(settings: Settings | None = None, **overrides: Any) -> MetabaseSession:
        if settings is None:
            options: dict[str, Any] = {
                "url": sandbox.url,
                "username": sandbox.username,
                "password": sandbox.password,
                "cache_dir": tmp_path / "cache",
            }
            options.update(overrides)
            settings = Settings(**options)
        session = MetabaseSession(settings, clock=sandbox.clock.now, backoff_factor=0.01)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


def token_of(session: MetabaseSession) -> str:
    assert isinstance(session.auth, SessionLogin)
    current = session.auth._current
    assert current is not None
    return current.token


def test_the_scheme_follows_the_settings(sandbox: Any, make_session: SessionFactory) -> None:
    assert isinstance(make_session().auth, SessionLogin)
    keyed = make_session(username=None, password=None, api_key=sandbox.api_key)
    assert isinstance(keyed.auth, ApiKeyAuth)
    assert keyed.auth.kind == "api_key" and "auth=api_key" in repr(keyed)


# -- the environment's password belongs to the environment's user -----------------------------


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def test_the_env_password_is_not_sent_for_another_user(
    sandbox: Any, make_session: SessionFactory, tmp_path: Path, no_terminal: None
) -> None:
    sandbox.add_user(OTHER, OTHER_PASSWORD)
    environ = {ENV_EMAIL: sandbox.username, ENV_PASSWORD: sandbox.password}
    settings = Settings.resolve(sandbox.url, OTHER, cache_dir=tmp_path / "c", environ=environ)
    session = make_session(settings)
    with pytest.raises(AuthError) as caught:
        session.login()
    assert f"{ENV_PASSWORD} is the password of {ENV_EMAIL}" in caught.value.message
    assert ENV_EMAIL in str(caught.value) and ENV_PASSWORD in str(caught.value)
    assert sandbox.count(*LOGIN) == 0  # nothing was sent for the other account

    # Asked with the prompt instead, when there is one.
    asked: list[str] = []
    prompted = MetabaseSession(
        settings, password_prompt=lambda m: asked.append(m) or OTHER_PASSWORD
    )
    assert prompted.login().username == OTHER
    assert len(asked) == 1 and OTHER in asked[0]
    assert [r.status for r in sandbox.requests(*LOGIN)] == [200]
    prompted.close()


def test_the_env_password_serves_its_own_user_in_any_case(
    sandbox: Any, make_session: SessionFactory, tmp_path: Path
) -> None:
    environ = {ENV_EMAIL: sandbox.username, ENV_PASSWORD: sandbox.password}
    user = sandbox.username.upper()
    settings = Settings.resolve(sandbox.url, user, cache_dir=tmp_path / "c", environ=environ)
    assert make_session(settings).login().reused is False
    assert sandbox.count(*LOGIN) == 1


def test_without_an_env_user_the_env_password_serves_the_given_user(
    sandbox: Any, make_session: SessionFactory, tmp_path: Path
) -> None:
    sandbox.add_user(OTHER, OTHER_PASSWORD)
    environ = {ENV_PASSWORD: OTHER_PASSWORD}
    settings = Settings.resolve(sandbox.url, OTHER, cache_dir=tmp_path / "c", environ=environ)
    assert make_session(settings).login().username == OTHER
    assert [r.status for r in sandbox.requests(*LOGIN)] == [200]


# -- no secret in a traceback's local variables -------------------------------------------------


def frames_of(exc: BaseException) -> list[dict[str, Any]]:
    """The locals of each library frame in the traceback of ``exc`` and its causes."""
    found: list[dict[str, Any]] = []
    seen: BaseException | None = exc
    while seen is not None:
        tb: TracebackType | None = seen.__traceback__
        while tb is not None:
            if f"{os.sep}massive_magic{os.sep}" in tb.tb_frame.f_code.co_filename:
                found.append(dict(tb.tb_frame.f_locals))
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__
    return found


def test_no_token_in_the_locals_of_a_traceback(sandbox: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    token = token_of(session)
    sandbox.faults.fail_next(10, status=502, path=ME)
    caught: list[BaseException] = []
    for path, error in (("/api/card/999999", NotFound), (ME, ResponseError)):
        with pytest.raises(error) as raised:
            session.request("GET", path)
        caught.append(raised.value)
    for exc in caught:
        frames = frames_of(exc)
        assert len(frames) >= 2  # request() and where the error was raised
        for local in frames:
            for name, value in local.items():
                assert token not in repr(value), f"{name} shows the token"


def test_no_password_in_the_locals_of_a_refused_login(
    sandbox: Any, make_session: SessionFactory
) -> None:
    secret = "hunter2-wrong-password"
    with pytest.raises(AuthError) as caught:
        make_session(password=secret).login()
    frames = frames_of(caught.value)
    assert len(frames) >= 3  # login(), the token path, the login request
    for local in frames:
        for name, value in local.items():
            assert secret not in repr(value), f"{name} shows the password"


# -- a cached session must be this user's -------------------------------------------------------


def test_a_planted_session_of_another_user_is_not_used(
    sandbox: Any, make_session: SessionFactory, tmp_path: Path
) -> None:
    sandbox.add_user(OTHER, OTHER_PASSWORD)
    planted = requests.post(
        f"{sandbox.url}/api/session",
        json={"username": OTHER, "password": OTHER_PASSWORD},
        timeout=10,
    ).json()["id"]
    store = TokenStore(tmp_path / "cache")
    store.save(
        sandbox.url,
        sandbox.username,
        TokenEntry(session_id=planted, created_at=sandbox.clock.now()),
    )
    sandbox.reset_log()
    session = make_session()
    with pytest.warns(CacheWarning, match="belongs to another account"):
        me = read_json(session.request("GET", ME))
    assert me["email"] == sandbox.username
    # One check with the planted session, then a login of our own, then the request.
    assert [(r.method, r.path, r.status) for r in sandbox.log] == [
        ("GET", ME, 200),
        ("POST", "/api/session", 200),
        ("GET", ME, 200),
    ]
    assert [r.header("X-Metabase-Session") == planted for r in sandbox.log] == [
        True,
        False,
        False,
    ]
    entry = store.load(sandbox.url, sandbox.username)
    assert entry is not None and entry.session_id == token_of(session)


def test_a_cached_session_is_checked_once_per_session(
    sandbox: Any, make_session: SessionFactory
) -> None:
    make_session().login()
    sandbox.reset_log()
    session = make_session()
    for _ in range(3):
        session.request("GET", ME)
    assert sandbox.count(*LOGIN) == 0
    assert sandbox.count("GET", ME) == 4  # the check, then the three requests


# -- two logins racing with one wrong password -------------------------------------------------


def test_every_caller_sees_why_the_first_login_was_refused(
    sandbox: Any, make_session: SessionFactory
) -> None:
    session = make_session(password="wrong")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            session.request("GET", ME)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4
    assert {type(exc) for exc in errors} == {AuthError}
    assert all("did not match stored password" in str(exc) for exc in errors)
    assert len({id(exc) for exc in errors}) == 4  # each thread its own exception object
    assert sandbox.count(*LOGIN) == 1
