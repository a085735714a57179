"""MetabaseSession against the sandbox over real HTTP: logins are counted on the server.

The session's clock is the sandbox's clock (``srv.clock.now``), so ``srv.clock.advance``
ages both sides at once without sleeping.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from massive_magic import session as session_module
from massive_magic.errors import (
    AccessDenied,
    AuthError,
    CacheWarning,
    ConfigError,
    LoginThrottled,
    MassiveWarning,
    NextStep,
    NotFound,
    ResponseError,
    Step,
)
from massive_magic.sandbox import demo
from massive_magic.session import THROTTLE_FALLBACK, MetabaseSession, SessionInfo, read_json
from massive_magic.settings import ENV_ALLOW_HTTP, ENV_EMAIL, ENV_PASSWORD, Settings
from massive_magic.token_store import TokenEntry, TokenStore

LOGIN = ("POST", "/api/session")
ME = "/api/user/current"
DAY = 24 * 3600.0


# -- the sandbox -----------------------------------------------------------------------


SessionFactory = Callable[..., MetabaseSession]


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """The (not yet existing) cache directory the sessions of one test share."""
    return tmp_path / "kernel-cache"


@pytest.fixture
def make_session(srv: Any, tmp_path: Path) -> Iterator[SessionFactory]:
    """Build sessions on the sandbox; all share one cache directory unless told otherwise."""
    cache_dir = tmp_path / "kernel-cache"
    made: list[MetabaseSession] = []

    def make(**overrides: Any) -> MetabaseSession:
        options: dict[str, Any] = {
            "url": srv.url,
            "username": srv.username,
            "password": srv.password,
            "cache_dir": cache_dir,
        }
        session_options = {
            key: overrides.pop(key)
            for key in ("store", "password_prompt", "retries", "backoff_factor")
            if key in overrides
        }
        session_options.setdefault("backoff_factor", 0.01)
        options.update(overrides)
        session = MetabaseSession(Settings(**options), clock=srv.clock.now, **session_options)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


def logins(srv: Any) -> int:
    return srv.count(*LOGIN)


def statuses(srv: Any, path: str) -> list[int]:
    return [r.status for r in srv.log if r.path == path]


def token_of(session: MetabaseSession) -> str:
    """The token, read the way an attacker would have to: from a private attribute."""
    current = session._current
    assert current is not None
    return current.token


# -- logging in and reusing ----------------------------------------------------------


def test_first_request_logs_in_once_and_reuses_the_session(
    srv: Any, make_session: SessionFactory
) -> None:
    session = make_session()
    assert session.info is None
    for _ in range(3):
        assert read_json(session.request("GET", ME))["email"] == srv.username
    assert logins(srv) == 1
    assert statuses(srv, ME) == [200, 200, 200]
    info = session.info
    assert isinstance(info, SessionInfo)
    assert (info.url, info.username, info.reused, info.auth) == (
        srv.url,
        srv.username,
        False,
        "session",
    )
    assert info.created_at.tzinfo is timezone.utc
    assert info.expires_at == info.created_at + timedelta(days=14)


def test_a_cached_session_is_reused_with_zero_logins(
    srv: Any, make_session: SessionFactory
) -> None:
    first = make_session()
    first.login()
    assert logins(srv) == 1
    second = make_session()
    info = second.login()
    assert info.reused is True
    assert read_json(second.request("GET", ME))["email"] == srv.username
    assert logins(srv) == 1
    assert token_of(first) == token_of(second)


def test_login_force_logs_in_anew(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    old = token_of(session)
    info = session.login(force=True)
    assert logins(srv) == 2
    assert info.reused is False
    assert token_of(session) != old


def test_cache_file_is_private_and_holds_no_password(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    session = make_session()
    session.login()
    path = TokenStore(cache_dir).path_for(srv.url, srv.username)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    text = path.read_text()
    assert srv.password not in text
    assert json.loads(text)["session_id"] == token_of(session)


def test_corrupt_cache_warns_and_still_works(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    store = TokenStore(cache_dir)
    make_session().login()
    store.path_for(srv.url, srv.username).write_bytes(b'{"version": 1, "session_id": ')
    session = make_session()
    with pytest.warns(CacheWarning, match="corrupt"):
        assert session.request("GET", ME).status_code == 200
    assert logins(srv) == 2
    entry = store.load(srv.url, srv.username)  # repaired by the login
    assert entry is not None and entry.session_id == token_of(session)


def test_unwritable_cache_warns_and_still_works(
    srv: Any, make_session: SessionFactory, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    session = make_session(cache_dir=blocker / "cache")
    with pytest.warns(CacheWarning):
        assert session.request("GET", ME).status_code == 200
    assert session.request("GET", ME).status_code == 200  # memory keeps the session
    assert logins(srv) == 1


# -- renewal -----------------------------------------------------------------------------


def test_expired_session_is_renewed_once_and_the_request_resent(
    srv: Any, make_session: SessionFactory
) -> None:
    session = make_session()
    session.login()
    old = token_of(session)
    srv.expire_sessions()
    srv.reset_log()
    assert read_json(session.request("GET", ME))["email"] == srv.username
    assert [(r.method, r.path, r.status) for r in srv.log] == [
        ("GET", ME, 401),
        ("POST", "/api/session", 200),
        ("GET", ME, 200),
    ]
    assert token_of(session) != old


def test_a_session_renewed_by_another_session_is_picked_up_without_login(
    srv: Any, make_session: SessionFactory
) -> None:
    first, second = make_session(), make_session()
    first.login()
    srv.expire_sessions()
    second.request("GET", ME)  # 401 -> logs in -> writes the cache
    assert logins(srv) == 2
    srv.reset_log()
    first.request("GET", ME)  # 401 -> the cache has a new token -> no login
    assert logins(srv) == 0
    assert statuses(srv, ME) == [401, 200]
    assert token_of(first) == token_of(second)


def test_second_401_is_an_auth_error_without_a_loop(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    srv.max_session_age = 0  # every session is dead on arrival
    srv.reset_log()
    with pytest.raises(AuthError, match="right after it was renewed") as caught:
        session.request("GET", ME)
    assert [(r.method, r.path, r.status) for r in srv.log] == [
        ("GET", ME, 401),
        ("POST", "/api/session", 200),
        ("GET", ME, 401),
    ]
    assert token_of(session) not in str(caught.value)
    assert "login(force=True)" in str(caught.value)


def test_old_session_is_renewed_before_use_without_a_wasted_request(
    srv: Any, make_session: SessionFactory
) -> None:
    session = make_session()
    session.login()
    srv.clock.advance(14 * DAY + 1)  # both clocks: the session is past Metabase's max age
    srv.reset_log()
    session.request("GET", ME)
    assert [(r.method, r.path, r.status) for r in srv.log] == [
        ("POST", "/api/session", 200),
        ("GET", ME, 200),
    ]


def test_configured_max_age_renews_early(srv: Any, make_session: SessionFactory) -> None:
    """An admin set MAX_SESSION_AGE to one hour: renew just before the hour, not after a 401."""
    srv.max_session_age = 3600
    session = make_session(max_session_age=3600)
    session.login()
    srv.clock.advance(3600 - 30)  # still valid on the server, but inside the renewal margin
    srv.reset_log()
    session.request("GET", ME)
    assert statuses(srv, "/api/session") == [200]
    assert statuses(srv, ME) == [200]


def test_a_stale_cache_entry_is_not_reused(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    make_session().login()
    srv.clock.advance(15 * DAY)
    srv.reset_log()
    session = make_session()
    assert session.login().reused is False
    assert logins(srv) == 1


def test_sixteen_threads_meeting_an_expired_session_send_one_login(
    srv: Any, make_session: SessionFactory
) -> None:
    session = make_session()
    session.login()
    srv.expire_sessions()
    srv.reset_log()
    barrier = threading.Barrier(16)
    results: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            results.append(session.request("GET", ME).status_code)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [200] * 16
    assert logins(srv) == 1


def test_two_sessions_in_one_process_share_one_renewal(
    srv: Any, make_session: SessionFactory
) -> None:
    """Two kernels' worth of sessions, 8 threads each, one cache: still one login."""
    sessions = [make_session(), make_session()]
    sessions[0].login()
    sessions[1].login()
    srv.expire_sessions()
    srv.reset_log()
    barrier = threading.Barrier(16)
    results: list[int] = []

    def work(session: MetabaseSession) -> None:
        barrier.wait()
        results.append(session.request("GET", ME).status_code)

    threads = [threading.Thread(target=work, args=(sessions[n % 2],)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 16
    assert logins(srv) == 1


# -- another process sharing the cache -------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("error")
    from massive_magic.errors import MassiveError
    from massive_magic.session import MetabaseSession, read_json
    from massive_magic.settings import Settings

    url, user, cache_dir, now = sys.argv[1:5]
    settings = Settings.resolve(url, user, cache_dir=cache_dir)  # password from the env
    # The parent's clock, passed in: a frozen sandbox clock stays frozen here too.
    session = MetabaseSession(settings, clock=lambda: float(now))
    try:
        me = read_json(session.request("GET", "/api/user/current"))
        info = session.info
        print(json.dumps({"email": me["email"], "reused": info.reused}))
    except MassiveError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc),
                          "retry_after": getattr(exc, "retry_after", None)}))
    """
)


def run_child(srv: Any, cache_dir: Path, username: str, password: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASSIVE_")}
    env[ENV_PASSWORD] = password
    done = subprocess.run(
        [sys.executable, "-c", CHILD, srv.url, username, str(cache_dir), repr(srv.clock.now())],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_another_process_reuses_the_session_with_zero_logins(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    make_session().login()
    assert logins(srv) == 1
    result = run_child(srv, cache_dir, srv.username, srv.password)
    assert result == {"email": srv.username, "reused": True}
    assert logins(srv) == 1


def test_a_session_renewed_by_another_process_is_picked_up(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    first = make_session()
    first.login()
    srv.expire_sessions()
    # The child meets a 401, finds its own stale token in the cache, logs in, writes it.
    result = run_child(srv, cache_dir, srv.username, srv.password)
    assert result == {"email": srv.username, "reused": False}  # it had to log in itself
    assert logins(srv) == 2
    srv.reset_log()
    # The first process meets a 401 and takes the child's token from the cache.
    assert first.request("GET", ME).status_code == 200
    assert logins(srv) == 0
    assert statuses(srv, ME) == [401, 200]
    entry = TokenStore(cache_dir).load(srv.url, srv.username)
    assert entry is not None and entry.session_id == token_of(first)


def test_processes_meeting_an_expired_session_at_once_send_one_login(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    """Four kernels start together on a cache whose session the server dropped."""
    make_session().login()
    srv.expire_sessions()
    srv.reset_log()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASSIVE_")}
    env[ENV_PASSWORD] = srv.password
    args = [
        sys.executable,
        "-c",
        CHILD,
        srv.url,
        srv.username,
        str(cache_dir),
        repr(srv.clock.now()),
    ]
    children = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        for _ in range(4)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * 4, outputs
    assert [json.loads(out)["email"] for out, _ in outputs] == [srv.username] * 4
    assert logins(srv) == 1


# -- wrong credentials and throttling ---------------------------------------------------


def test_wrong_password_names_url_and_user_never_the_password(
    srv: Any, make_session: SessionFactory
) -> None:
    secret = "hunter2-wrong-password"
    session = make_session(password=secret)
    with pytest.raises(AuthError) as caught:
        session.request("GET", ME)
    message = str(caught.value)
    assert srv.url in message and srv.username in message
    assert "did not match stored password" in message
    assert secret not in message and secret not in repr(caught.value)
    assert not isinstance(caught.value, LoginThrottled)
    assert logins(srv) == 1
    # No automatic retry of a refused login: the next request sends nothing.
    with pytest.raises(AuthError, match="refused"):
        session.request("GET", ME)
    assert logins(srv) == 1
    assert srv.count("GET", ME) == 0
    # An explicit login() does try again (the user asked for it).
    with pytest.raises(AuthError, match="did not match stored password") as again:
        session.login()
    assert not isinstance(again.value, LoginThrottled)
    assert logins(srv) == 2


def fail_logins(srv: Any, username: str, times: int) -> None:
    """Wrong passwords sent straight to the sandbox (not through the client)."""
    for _ in range(times):
        response = requests.post(
            f"{srv.url}/api/session", json={"username": username, "password": "nope"}, timeout=10
        )
        assert response.status_code == 401


def test_throttled_login_is_remembered_across_sessions_and_processes(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    user, password = "locked@partner.example", "right-password"
    srv.add_user(user, password)
    srv.clock.freeze()
    fail_logins(srv, user, 10)
    srv.reset_log()
    session = make_session(username=user, password=password)
    with pytest.raises(LoginThrottled) as caught:
        session.request("GET", ME)
    assert caught.value.retry_after == 15.0  # 15 s x (11 - 10) ** 1.5, from the server's message
    assert "15 s" in str(caught.value) and user in str(caught.value)
    assert logins(srv) == 1

    # Same session, a new session, another process: no login is sent.
    with pytest.raises(LoginThrottled) as again:
        session.request("GET", ME)
    assert again.value.retry_after == pytest.approx(15.0)
    with pytest.raises(LoginThrottled):
        make_session(username=user, password=password).login(force=True)
    result = run_child(srv, cache_dir, user, password)
    assert result["error"] == "LoginThrottled"
    assert result["retry_after"] == 15.0  # the child runs on the same frozen clock
    assert logins(srv) == 1

    # Once the named wait has passed, one login is sent. Metabase counted the refused attempt,
    # so it names a longer wait (15 s x 2 ** 1.5 = 42 s after the last attempt), remembered too.
    srv.clock.advance(16)
    with pytest.raises(LoginThrottled) as later:
        session.request("GET", ME)
    assert later.value.retry_after == 26.0
    assert logins(srv) == 2
    with pytest.raises(LoginThrottled):
        session.login()
    assert logins(srv) == 2


def test_try_again_later_keeps_the_client_away_for_an_hour(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    user, password = "later@partner.example", "right-password"
    srv.add_user(user, password)
    srv.clock.freeze()
    fail_logins(srv, user, 10)
    srv.clock.advance(20)  # past the cosmetic wait: Metabase now says "try again later"
    srv.reset_log()
    session = make_session(username=user, password=password)
    with pytest.raises(LoginThrottled) as caught:
        session.login()
    assert caught.value.retry_after is None
    assert "try again later" in str(caught.value)
    entry = TokenStore(cache_dir).load(srv.url, user)
    assert entry is not None and entry.throttled_until == srv.clock.now() + THROTTLE_FALLBACK

    srv.clock.advance(THROTTLE_FALLBACK - 60)
    with pytest.raises(LoginThrottled) as waiting:
        make_session(username=user, password=password).login()
    assert waiting.value.retry_after == pytest.approx(60.0)
    assert logins(srv) == 1

    # An hour without attempts later, Metabase lets the right password in.
    srv.clock.advance(61)
    assert session.login().reused is False
    assert logins(srv) == 2
    entry = TokenStore(cache_dir).load(srv.url, user)
    assert entry is not None and entry.throttled_until is None


def test_restarted_kernel_cannot_extend_the_lock(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    """Ten kernels started in a row during a lockout send no login at all."""
    user = "restless@partner.example"
    srv.add_user(user, "pw")
    srv.clock.freeze()
    fail_logins(srv, user, 10)
    with pytest.raises(LoginThrottled):
        make_session(username=user, password="pw").login()
    srv.reset_log()
    for _ in range(10):
        with pytest.raises(LoginThrottled):
            make_session(username=user, password="pw").login()
    assert logins(srv) == 0

    def prompt(message: str) -> str:
        raise AssertionError("nobody should be asked for a password that cannot be used")

    with pytest.raises(LoginThrottled):
        make_session(username=user, password=None, password_prompt=prompt).login()


# -- passwords and user names ---------------------------------------------------------


def test_password_prompt_is_called_once_when_no_password(
    srv: Any, make_session: SessionFactory
) -> None:
    asked: list[str] = []

    def prompt(message: str) -> str:
        asked.append(message)
        return srv.password

    session = make_session(password=None, password_prompt=prompt)
    session.request("GET", ME)
    srv.expire_sessions()
    session.request("GET", ME)  # the renewal reuses the prompted password from memory
    assert len(asked) == 1
    assert srv.username in asked[0] and srv.url in asked[0]
    assert logins(srv) == 2


def test_a_refused_prompted_password_is_asked_again(srv: Any, make_session: SessionFactory) -> None:
    answers = iter(["wrong", srv.password])
    session = make_session(password=None, password_prompt=lambda _: next(answers))
    with pytest.raises(AuthError, match="did not match stored password"):
        session.login()
    assert session.login().auth == "session"
    assert logins(srv) == 2


def test_a_cached_session_needs_no_password(srv: Any, make_session: SessionFactory) -> None:
    make_session().login()

    def prompt(message: str) -> str:
        raise AssertionError("no password should be needed")

    session = make_session(password=None, password_prompt=prompt)
    assert session.request("GET", ME).status_code == 200


def test_no_password_without_a_terminal_names_the_env_var(
    srv: Any, make_session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    session = make_session(password=None)
    with pytest.raises(AuthError, match=ENV_PASSWORD):
        session.request("GET", ME)
    assert logins(srv) == 0


def test_no_password_on_a_terminal_uses_getpass(
    srv: Any, make_session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked: list[str] = []
    monkeypatch.setattr(sys, "stdin", Tty(""))
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or srv.password)
    make_session(password=None).login()
    assert len(asked) == 1 and srv.username in asked[0]
    assert logins(srv) == 1


def test_no_username_names_the_env_var(srv: Any, make_session: SessionFactory) -> None:
    with pytest.raises(AuthError, match=ENV_EMAIL):
        make_session(username=None).request("GET", ME)
    assert len(srv.log) == 0


# -- API keys ----------------------------------------------------------------------------


def test_api_key_is_sent_and_never_logs_in(srv: Any, make_session: SessionFactory) -> None:
    session = make_session(username=None, password=None, api_key=srv.api_key)
    info = session.login()
    assert (info.auth, info.reused, info.expires_at) == ("api_key", False, None)
    assert info.username  # the key's user, from /api/user/current
    session.request("GET", ME)
    assert logins(srv) == 0
    for record in srv.log:
        assert record.header("X-API-Key") == srv.api_key
        assert record.header("X-Metabase-Session") is None


def test_a_refused_api_key_is_an_auth_error_without_login(
    srv: Any, make_session: SessionFactory
) -> None:
    bad_key = "mb_" + "x" * 40
    session = make_session(api_key=bad_key)
    with pytest.raises(AuthError, match="API key") as caught:
        session.request("GET", ME)
    assert bad_key not in str(caught.value)
    assert logins(srv) == 0
    assert statuses(srv, ME) == [401]


# -- cookies, headers, secrets ---------------------------------------------------------


def test_no_cookie_is_ever_sent(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    login_record = next(r for r in srv.log if r.path == "/api/session")
    assert login_record.status == 200
    session.request("GET", ME)
    srv.expire_sessions()
    session.request("GET", ME)
    session.request("GET", "/api/card")
    session.logout()
    assert len(srv.log) >= 6
    assert [r.path for r in srv.log if r.header("Cookie") is not None] == []
    assert len(session._http.cookies) == 0


def test_sandbox_does_set_a_session_cookie(srv: Any) -> None:
    """The no-cookie test above means something: the sandbox sends metabase.SESSION."""
    response = requests.post(
        f"{srv.url}/api/session",
        json={"username": srv.username, "password": srv.password},
        timeout=10,
    )
    assert "metabase.SESSION" in response.headers.get("Set-Cookie", "")


def test_user_agent_and_token_header(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.request("GET", ME)
    from massive_magic import __version__

    assert {r.header("User-Agent") for r in srv.log} == {f"massive-magic/{__version__}"}
    data_request = next(r for r in srv.log if r.path == ME)
    assert data_request.header("X-Metabase-Session") == token_of(session)
    login_request = next(r for r in srv.log if r.path == "/api/session")
    assert login_request.header("X-Metabase-Session") is None


def test_token_never_in_repr_log_or_exception(
    srv: Any, make_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = make_session()
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        session.request("GET", ME)
        srv.expire_sessions()
        session.request("GET", ME)  # a renewal: the noisiest path
        srv.faults.fail_next(10, status=502, path=ME)
        with pytest.raises(ResponseError, match="502") as gateway:
            session.request("GET", ME)
        with pytest.raises(NotFound) as missing:
            session.request("GET", "/api/card/999999")
        errors += [gateway.value, missing.value]
    token = token_of(session)
    texts = [repr(session), str(session), repr(session.info), caplog.text]
    for exc in errors:
        texts += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
    assert all(token not in text for text in texts)
    assert srv.password not in caplog.text


# -- transport ---------------------------------------------------------------------------


def test_gateway_errors_are_retried(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    srv.faults.fail_next(2, status=502, path=ME)
    assert session.request("GET", ME).status_code == 200
    assert statuses(srv, ME) == [502, 502, 200]


def test_card_queries_are_retried_after_gateway_errors(
    srv: Any, make_session: SessionFactory
) -> None:
    session = make_session()
    session.login()
    path = f"/api/card/{demo.SEQUENCE}/query"
    srv.faults.fail_next(1, status=503, path=path)
    response = session.request("POST", path, json={"parameters": []})
    assert response.status_code == 202
    assert read_json(response)["status"] == "completed"
    assert statuses(srv, path) == [503, 202]


def test_login_is_not_retried_after_a_gateway_error(srv: Any, make_session: SessionFactory) -> None:
    srv.faults.fail_next(1, status=502, path="/api/session", method="POST")
    session = make_session()
    with pytest.raises(ResponseError, match="502 Bad Gateway"):
        session.login()
    assert statuses(srv, "/api/session") == [502]
    assert session.login().reused is False  # the next explicit try works
    assert logins(srv) == 2


def test_exhausted_retries_give_a_short_response_error(
    srv: Any, make_session: SessionFactory
) -> None:
    session = make_session(retries=2)
    session.login()
    srv.faults.fail_next(10, status=502, path=ME)
    with pytest.raises(ResponseError) as caught:
        session.request("GET", ME)
    assert str(caught.value) == (
        f"The server at {srv.url} answered 502 Bad Gateway "
        "(an HTML page, probably a proxy) — try again in a minute."
    )
    assert caught.value.status == 502
    assert statuses(srv, ME) == [502, 502, 502]


def test_a_cut_answer_is_a_response_error(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    srv.faults.cut_next(1, path="/api/card")
    with pytest.raises(ResponseError, match="ended early"):
        session.request("GET", "/api/card")
    srv.faults.cut_next(1, path="/api/card")
    streamed = session.request("GET", "/api/card", stream=True)
    with pytest.raises(ResponseError, match=r"ended early|not valid JSON"):
        read_json(streamed)


def test_an_html_answer_with_200_is_not_json(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    srv.faults.fail_next(1, status=200, path=ME)
    with pytest.raises(ResponseError, match="not valid JSON"):
        read_json(session.request("GET", ME))


def test_read_timeout_is_never_retried_and_says_how_long(
    srv: Any, make_session: SessionFactory
) -> None:
    """A query that reached the server is not sent again, timeouts included (default retries):
    Metabase would run it twice on the warehouse."""
    session = make_session(read_timeout=0.3)  # default retries
    session.login()
    path = f"/api/card/{demo.SEQUENCE}/query"
    srv.faults.delay_next(5, seconds=1.5, path=path)
    with pytest.raises(ResponseError, match=r"did not answer within 0\.3 s") as caught:
        session.request("POST", path, json={"parameters": []})
    assert caught.value.next_steps == (NextStep(Step.RAISE_TIMEOUT),)
    # Each POST that reached the sandbox took one use of the delay rule.
    assert srv.faults.pending == [{"kind": "delay", "remaining": 4, "path": path, "method": None}]
    wait_for_log(srv, "POST", path, 1)
    assert srv.count("POST", path) == 1


def test_a_dripping_login_answer_ends_at_the_deadline_and_is_not_sent_again(
    srv: Any, make_session: SessionFactory
) -> None:
    """The read timeout bounds the whole answer, not the gap between two bytes: a login
    answer dripped a byte at a time is cut there; the password goes out once."""
    session = make_session(read_timeout=1)
    srv.faults.drip_next(path="/api/session", method="POST", interval=0.25, max_seconds=8)
    with pytest.raises(ResponseError) as caught:
        session.login()
    assert "did not finish within the timeout of 1 s" in caught.value.message
    assert caught.value.next_steps == (NextStep(Step.RAISE_TIMEOUT),)
    assert srv.password not in str(caught.value)
    [request] = srv.requests(*LOGIN)
    wait_until(lambda: request.finished is not None)
    assert request.fault == "drip" and not request.complete  # the client hung up
    assert session.info is None
    assert session.login().reused is False  # the next explicit try works
    assert logins(srv) == 2


def test_a_slow_answer_within_the_deadline_is_read_whole(
    srv: Any, make_session: SessionFactory
) -> None:
    """Dripped but done in time: the body is all there, decoded, and parsed as usual."""
    session = make_session(read_timeout=30)
    session.login()
    srv.faults.drip_next(path=ME, method="GET", interval=0.01, piece=16, max_seconds=0.3)
    response = session.request("GET", ME)
    assert read_json(response)["email"] == srv.username
    [request] = srv.requests("GET", ME)
    assert request.fault == "drip" and request.complete


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "identity", ""])
def test_bodies_are_decoded_as_their_content_encoding_says(encoding: str) -> None:
    """Whole answers are read as sent and decoded at the end (two gzip members too)."""
    text = b'{"id": 1, "name": "Daily earnings"}' * 50
    body = {
        "gzip": gzip.compress(text[:700]) + gzip.compress(text[700:]),
        "x-gzip": gzip.compress(text),
        "deflate": zlib.compress(text),
    }.get(encoding, text)
    assert session_module._decoded(body, encoding) == text


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait (at most a minute) for what another thread does, e.g. the sandbox's log."""
    pause = threading.Event()
    for _ in range(3000):
        if condition():
            return
        pause.wait(0.02)


def wait_for_log(srv: Any, method: str, path: str, n: int) -> None:
    """Wait until the sandbox logged ``n`` such requests (a delayed one is logged late)."""
    pause = threading.Event()
    for _ in range(3000):  # at most a minute on a very busy machine
        if srv.count(method, path) >= n:
            return
        pause.wait(0.02)


def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, then released
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        url=f"http://127.0.0.1:{port}", username="a@b.c", password="x", cache_dir=tmp_path
    )
    session = MetabaseSession(settings, retries=1, backoff_factor=0.01)
    with pytest.raises(ResponseError, match=r"Could not connect .* check the URL"):
        session.request("GET", ME)


# -- status mapping ----------------------------------------------------------------------


def test_not_found_and_access_denied(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    with pytest.raises(NotFound, match="Not found"):
        session.request("GET", "/api/card/999999")
    with pytest.raises(AccessDenied, match="permissions"):
        session.request("GET", f"/api/card/{demo.RESTRICTED}")


def test_server_errors_carry_metabases_message_not_its_stack_trace(
    srv: Any, make_session: SessionFactory
) -> None:
    session = make_session()
    path = f"/api/card/{demo.SEQUENCE}/query"
    unknown_tag = {"type": "category", "value": "x", "target": ["variable", ["template-tag", "n"]]}
    with pytest.raises(ResponseError) as caught:
        session.request("POST", path, json={"parameters": [unknown_tag]})
    assert str(caught.value) == (
        f"Metabase at {srv.url} answered 500 Internal Server Error to POST {path}: "
        f'Invalid parameter: Card {demo.SEQUENCE} does not have a template tag named "n".'
    )
    assert (caught.value.status, caught.value.url) == (500, f"{srv.url}{path}")
    assert statuses(srv, path) == [500]  # a 500 is not a gateway error: not repeated
    with pytest.raises(ResponseError, match="username: value must be a non-blank string"):
        session.request("POST", "/api/session", json={"username": ""})


def test_redirects_are_not_followed(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    srv.faults.fail_next(1, status=302, path=ME)
    with pytest.raises(ResponseError, match="redirected") as caught:
        session.request("GET", ME)
    assert caught.value.status == 302
    assert srv.count("GET", ME) == 1


def test_requests_stay_on_the_configured_server(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    with pytest.raises(ValueError, match="not on"):
        session.request("GET", "https://elsewhere.example.com/api/user/current")
    assert len(srv.log) == 0


# -- logout ------------------------------------------------------------------------------


def test_logout_ends_the_session_and_removes_the_cache_entry(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    session = make_session()
    session.login()
    token = token_of(session)
    session.logout()
    assert session.info is None
    assert TokenStore(cache_dir).load(srv.url, srv.username) is None
    delete = next(r for r in srv.log if r.method == "DELETE")
    assert (delete.path, delete.status) == ("/api/session", 204)
    assert delete.header("X-Metabase-Session") == token
    # The server no longer knows the token.
    check = requests.get(f"{srv.url}{ME}", headers={"X-Metabase-Session": token}, timeout=10)
    assert check.status_code == 401
    session.logout()  # nothing left: nothing sent, no error
    assert srv.count("DELETE", "/api/session") == 1


def test_logout_tolerates_an_expired_session(srv: Any, make_session: SessionFactory) -> None:
    session = make_session()
    session.login()
    srv.expire_sessions()
    session.logout()
    assert statuses(srv, "/api/session")[-1] == 404


def test_logout_keeps_the_throttle_memory(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    store = TokenStore(cache_dir)
    until = srv.clock.now() + 600
    store.save(srv.url, srv.username, TokenEntry(session_id=None, throttled_until=until))
    session = make_session()
    session.logout()
    entry = store.load(srv.url, srv.username)
    assert entry is not None and entry.throttled_until == until


def test_logout_leaves_no_file_for_the_entry(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    session = make_session()
    session.login()
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".json", ".lock"]
    session.logout()
    assert list(cache_dir.iterdir()) == []  # no empty .lock piles up per server and user


def test_a_refused_login_leaves_no_lock_file(
    srv: Any, make_session: SessionFactory, cache_dir: Path
) -> None:
    with pytest.raises(AuthError, match="did not match stored password"):
        make_session(password="wrong").login()
    assert list(cache_dir.iterdir()) == []


# -- where the password may go ------------------------------------------------------------------


def test_plain_http_to_another_machine_is_refused_before_any_connection(
    remote_sandbox: Any, tmp_path: Path
) -> None:
    url = remote_sandbox.remote_url
    user, password = remote_sandbox.username, remote_sandbox.password
    with pytest.raises(ConfigError) as caught:
        Settings.resolve(url, user, password, cache_dir=tmp_path, environ={})
    assert caught.value.next_steps == (NextStep(Step.USE_HTTPS),)
    assert "clear text" in caught.value.message
    assert remote_sandbox.log == []  # not even a connection attempt was logged

    # Opting in works, with a warning, by argument or by environment variable.
    allowed = Settings.resolve(url, user, password, cache_dir=tmp_path, allow_http=True)
    from_env = Settings.resolve(
        url, user, password, cache_dir=tmp_path, environ={ENV_ALLOW_HTTP: "1"}
    )
    assert allowed.allow_http and from_env.allow_http
    with pytest.warns(MassiveWarning, match="clear text"):
        session = MetabaseSession(allowed, backoff_factor=0.01)
    with session:
        assert session.login().username == user
    assert remote_sandbox.count("POST", "/api/session") == 1


def test_loopback_http_needs_no_opt_in(srv: Any, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = Settings.resolve(srv.url, srv.username, srv.password, cache_dir=tmp_path)
        with MetabaseSession(settings) as session:
            session.login()


def test_a_url_with_credentials_is_refused_and_never_shown(srv: Any, tmp_path: Path) -> None:
    url = srv.url.replace("http://", f"http://{srv.username}:{srv.password}@")
    with pytest.raises(ConfigError) as caught:
        Settings.resolve(url, cache_dir=tmp_path, environ={})
    assert srv.password not in str(caught.value) and srv.password not in repr(caught.value)
    assert len(srv.log) == 0


def test_a_card_url_given_as_the_server_is_refused_with_a_hint(srv: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="looks like the address of a card") as caught:
        Settings.resolve(f"{srv.url}/question/484-payouts", cache_dir=tmp_path, environ={})
    assert f"the server's URL would be {srv.url} " in caught.value.message
    assert len(srv.log) == 0


def test_a_cache_directory_others_may_write_is_refused(
    srv: Any, make_session: SessionFactory, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    session = make_session(cache_dir=shared)
    with pytest.raises(ConfigError, match=str(shared)) as caught:
        session.request("GET", ME)
    assert "group or others may write to it" in caught.value.message
    assert len(srv.log) == 0  # refused before any login
    assert stat.S_IMODE(shared.stat().st_mode) == 0o777  # and left alone
