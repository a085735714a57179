"""Hostile networks and careless input, end to end through ``Client`` and the magics (#10).

Every case goes over real HTTP to the sandbox, whose faults play the broken proxy or
server (``srv.faults``): an echo of the request in an error page, a dripping or padded
body, a sign-in page, a query failing mid-stream, a slow answer. Each test counts what
reached the server (the request log) and never measures wall time.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from massive_magic import Client, errors
from massive_magic.errors import (
    AccessDenied,
    AuthError,
    BadCardRef,
    CardNotFound,
    MassiveError,
    MassiveWarning,
    NextStep,
    ResponseError,
    Step,
)
from massive_magic.sandbox import demo
from massive_magic.settings import ENV_EMAIL, ENV_PASSWORD

LOGIN = ("POST", "/api/session")
OTHER, OTHER_PASSWORD = "other@partner.example", "other-password"


def query_path(card: int, export: bool = True) -> str:
    return f"/api/card/{card}/query" + ("/api" if export else "")


def shown(exc: BaseException) -> str:
    """Everything a verbose traceback prints: each exception of the chain, its frames and
    their local variables (``%xmode Verbose``, pytest ``--showlocals``, Sentry)."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        parts += [repr(seen), str(seen)]
        tb = seen.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == __file__:  # the test's own frame
                tb = tb.tb_next
                continue
            for name, value in tb.tb_frame.f_locals.items():
                parts.append(f"{name} = {safe_repr(value)}")
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a half-built object: debuggers show a placeholder
        return "<unrepresentable>"


def token_of(srv: Any) -> str:
    """The session token the client sent last (as the sandbox saw it)."""
    token = next(
        r.header("X-Metabase-Session") for r in reversed(srv.log) if r.header("X-Metabase-Session")
    )
    assert token
    return token


def wait_until(condition: Any) -> None:
    """Wait (boundedly) for the sandbox to log what a hung-up or delayed answer did."""
    pause = threading.Event()
    for _ in range(3000):  # at most a minute on a very busy machine
        if condition():
            return
        pause.wait(0.02)


# -- secrets: an echoing proxy, verbose tracebacks ------------------------------------------


@pytest.mark.parametrize("status", [500, 403, 502])
def test_an_echoed_login_never_shows_the_password(srv: Any, make_client: Any, status: int) -> None:
    client = make_client(login=False)
    srv.faults.echo_next(1, status=status, path="/api/session", method="POST")
    with pytest.raises(MassiveError) as caught:
        client.login()
    [login] = srv.requests(*LOGIN)
    assert login.fault == "echo"  # the proxy answered with the request, password included
    assert "POST /api/session" in caught.value.message or status == 502  # its text was read
    assert srv.password not in shown(caught.value)
    assert srv.count(*LOGIN) == 1  # a login is never repeated after it reached the server


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ResponseError), (403, AccessDenied), (404, CardNotFound), (502, ResponseError)],
)
def test_an_echoed_query_never_shows_the_session_token(
    srv: Any, client: Client, status: int, error: type[MassiveError]
) -> None:
    client.cards()  # a request that carries the token, to learn it from the log
    token = token_of(srv)
    srv.faults.echo_next(10, status=status, path=query_path(demo.SEQUENCE, export=False) + "*")
    with pytest.raises(error) as caught:
        client.card(demo.SEQUENCE)
    assert srv.requests("POST", query_path(demo.SEQUENCE))[0].fault == "echo"
    assert token not in shown(caught.value)


@pytest.mark.parametrize(
    ("card", "fault", "error"),
    [
        (demo.RESTRICTED, None, AccessDenied),  # 403
        (999_999, None, CardNotFound),  # 404
        (demo.SEQUENCE, "fail", ResponseError),  # 502 after the retries
    ],
)
def test_no_secret_in_the_locals_of_a_failed_read(
    srv: Any, client: Client, card: int, fault: str | None, error: type[MassiveError]
) -> None:
    client.cards()
    token = token_of(srv)
    if fault:
        srv.faults.fail_next(10, status=502, path=query_path(card))
    with pytest.raises(error) as caught:
        client.card(card)
    text = shown(caught.value)
    assert "massive_magic" in text  # the library's frames and their locals are in it
    assert token not in text and srv.password not in text


# -- the first wrong password: its own reason, one login -----------------------------------------


def test_a_scripts_first_wrong_password_says_why(srv: Any, tmp_path: Path) -> None:
    """``Client(url, user, "bad").card(484)``: the query and the name lookup start together."""
    with (
        Client(srv.url, srv.username, "bad", cache_dir=tmp_path, progress=False) as mb,
        pytest.raises(AuthError) as caught,
    ):
        mb.card(demo.DAILY_EARNINGS)
    assert "did not match stored password" in str(caught.value)
    assert "no new attempt" not in str(caught.value)
    assert srv.count(*LOGIN) == 1
    assert srv.count("POST", query_path(demo.DAILY_EARNINGS)) == 0


# -- hangs: one query, one deadline ------------------------------------------------------------


def test_a_read_timeout_sends_the_query_once(srv: Any, make_client: Any) -> None:
    """Default retries: a query that reached the server is never sent again."""
    client = make_client(timeout=0.5)
    path = query_path(demo.SEQUENCE)
    srv.faults.delay_next(3, seconds=3, path=path)
    with pytest.raises(ResponseError) as caught:
        client.card(demo.SEQUENCE)
    wait_until(lambda: srv.count("POST", path) >= 1)
    assert srv.faults.pending[0]["remaining"] == 2  # one delayed answer was used up, not two
    assert srv.count("POST", path) == 1
    assert caught.value.next_steps == (NextStep(Step.RAISE_TIMEOUT),)
    assert "0.5 s" in caught.value.message


def test_a_dripping_body_ends_at_the_deadline(srv: Any, make_client: Any) -> None:
    """The timeout bounds the whole read: a body dripping a byte every 0.25 s is dropped."""
    client = make_client(timeout=1)
    path = query_path(demo.SEQUENCE)
    srv.faults.drip_next(path=path, interval=0.25, max_seconds=60)
    with pytest.raises(ResponseError) as caught:
        client.card(demo.SEQUENCE)
    assert "did not finish within the timeout of 1 s" in caught.value.message
    assert caught.value.next_steps == (NextStep(Step.RAISE_TIMEOUT),)
    [request] = srv.requests("POST", path)
    wait_until(lambda: request.finished is not None)
    assert request.fault == "drip" and not request.complete  # the client hung up


def test_a_body_padded_with_gzipped_whitespace_is_refused_early(srv: Any, client: Client) -> None:
    """A small download that inflates to 200 MiB of blanks: refused, not parsed."""
    path = query_path(demo.SEQUENCE)
    srv.faults.pad_next(200 << 20, gzip=True, path=path)
    with pytest.raises(ResponseError, match="whitespace in a row"):
        client.card(demo.SEQUENCE)
    [request] = srv.requests("POST", path)
    wait_until(lambda: request.finished is not None)
    assert not request.complete  # reading stopped long before the end
    assert request.bytes_sent < 200 << 20


def test_a_padded_query_answer_is_refused_early(srv: Any, client: Client) -> None:
    """The ``/query`` route (a limit of at most 2,000 rows) reads its answer whole."""
    path = query_path(demo.SEQUENCE, export=False)
    srv.faults.pad_next(64 << 20, gzip=True, path=path)
    with pytest.raises(ResponseError, match="whitespace in a row"):
        client.card(demo.SEQUENCE, limit=5)


def test_a_dripping_card_lookup_ends_at_the_deadline(srv: Any, make_client: Any) -> None:
    """``Client.card(ref, params)`` first reads the card's declarations: one call, one deadline."""
    client = make_client(timeout=1)
    path = f"/api/card/{demo.EARNINGS_FILTERED}"
    srv.faults.drip_next(path=path, method="GET", interval=0.25, max_seconds=8)
    with pytest.raises(ResponseError) as caught:
        client.card(demo.EARNINGS_FILTERED, {"country": "DE"})
    assert "did not finish within the timeout of 1 s" in caught.value.message
    assert caught.value.next_steps == (NextStep(Step.RAISE_TIMEOUT),)
    [request] = srv.requests(
        "GET", path
    )  # one lookup: a read that reached the server is not resent
    wait_until(lambda: request.finished is not None)
    assert request.fault == "drip" and not request.complete  # the client hung up
    assert not srv.requests("POST", query_path(demo.EARNINGS_FILTERED))  # the query never ran


# -- what the answer really is -----------------------------------------------------------------


@pytest.mark.parametrize("export", [True, False])
def test_a_sign_in_page_is_named_for_what_it_is(srv: Any, client: Client, export: bool) -> None:
    path = query_path(demo.SEQUENCE, export)
    srv.faults.html_next(path=path)
    with pytest.raises(ResponseError) as caught:
        client.card(demo.SEQUENCE, limit=None if export else 5)
    message = caught.value.message
    assert "answered 200 with an HTML page (“Sign in”)" in message
    assert "sign-in or proxy page, not Metabase's API" in message
    assert "mid-stream" not in message


@pytest.mark.parametrize("after_rows", [0, 5, 3000])
def test_a_query_failing_mid_stream_is_an_error_never_a_short_frame(
    srv: Any, client: Client, after_rows: int
) -> None:
    srv.faults.query_error_next(after_rows, path=query_path(demo.DAILY_EARNINGS))
    with pytest.raises(errors.QueryFailed) as caught:
        client.card(demo.DAILY_EARNINGS)
    assert srv.requests("POST", query_path(demo.DAILY_EARNINGS))[0].fault == "query_error"
    assert "canceling statement due to conflict" in str(caught.value)  # Metabase's own words
    assert caught.value.error_type == "invalid-query"


def test_metabases_words_end_before_the_advice(
    srv: Any, client: Client, ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQL error ends "Position: 38": the advice starts a sentence of its own."""
    with pytest.raises(errors.QueryFailed) as caught:
        client.card(demo.BROKEN)
    assert "Position: 38”. Open the card in Metabase" in str(caught.value)
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    assert run(ip, f"%massive_login --url {srv.url} --user {srv.username}").success
    error = usage_error(run(ip, f"%massive_card {demo.BROKEN}"))
    assert "Position: 38”. Open the card in Metabase" in str(error)


def test_ids_as_cards_gives_them_and_unicode_digits_are_not_ids(srv: Any, client: Client) -> None:
    """``Client.cards()`` gives numpy integers: they are ids; ``'٥١٢'`` is not card 512."""
    ids = client.cards()["id"]
    first = ids[ids == demo.SEQUENCE].iloc[0]
    assert not isinstance(first, int)  # a numpy integer, as the frame holds it
    assert client.card(first).attrs["massive"]["card_id"] == demo.SEQUENCE
    srv.reset_log()
    for ref in ("٥١٢", "٥١٢-sequence", f"{srv.url}/question/٥١٢"):
        with pytest.raises(BadCardRef):
            client.card(ref)
    assert srv.log == []


# -- careless input: a card URL of another server ------------------------------------------


@pytest.mark.parametrize("method", ["card", "card_info"])
def test_a_card_url_of_another_server_is_refused_unsent(
    srv: Any, client: Client, method: str
) -> None:
    ref = f"https://other.example.org/question/{demo.DAILY_EARNINGS}-daily"
    with pytest.raises(BadCardRef) as caught:
        getattr(client, method)(ref)
    assert "https://other.example.org" in caught.value.message and srv.url in caught.value.message
    assert caught.value.next_steps[0].step is Step.CONNECT_SERVER
    assert srv.log == []


def test_a_dashboard_url_of_another_server_is_refused_unsent(srv: Any, client: Client) -> None:
    with pytest.raises(BadCardRef):
        client.dashboard(f"https://other.example.org/dashboard/{demo.OVERVIEW_DASHBOARD}")
    assert srv.log == []


def test_a_card_url_of_the_same_server_is_read(srv: Any, client: Client) -> None:
    df = client.card(f"{srv.url}/question/{demo.SEQUENCE}-sequence")
    assert df.attrs["massive"]["card_id"] == demo.SEQUENCE


# -- the magics: whose password, http by choice --------------------------------------------------


def run(ip: InteractiveShell, source: str) -> ExecutionResult:
    return ip.run_cell(source, store_history=True)


def usage_error(result: ExecutionResult) -> UsageError:
    assert not result.success
    assert type(result.error_in_exec) is UsageError, repr(result.error_in_exec)
    return result.error_in_exec


def test_the_card_magic_refuses_a_url_of_another_server(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    assert run(ip, f"%massive_login --url {srv.url} --user {srv.username}").success
    srv.reset_log()
    error = usage_error(run(ip, "%massive_card https://other.example.org/question/484"))
    assert isinstance(error.__cause__, BadCardRef)
    assert "%massive_login --url https://other.example.org" in str(error)
    assert srv.log == []


def test_the_env_password_is_not_sent_for_another_user(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    srv.add_user(OTHER, OTHER_PASSWORD)
    monkeypatch.setenv(ENV_EMAIL, srv.username)
    monkeypatch.setenv(ENV_PASSWORD, srv.password)

    def no_stdin(prompt: str = "Password: ", stream: Any = None) -> str:
        raise StdinNotImplementedError("getpass was called, but this frontend does not support")

    monkeypatch.setattr(getpass, "getpass", no_stdin)
    error = usage_error(run(ip, f"%massive_login --url {srv.url} --user {OTHER}"))
    assert isinstance(error.__cause__, AuthError)
    assert f"{ENV_PASSWORD} is the password of {ENV_EMAIL}, another account" in str(error)
    assert srv.count(*LOGIN) == 0  # the demo user's password was not sent for OTHER

    asked: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda p="", s=None: asked.append(p) or OTHER_PASSWORD)
    assert run(ip, f"%massive_login --url {srv.url} --user {OTHER}").success
    assert len(asked) == 1 and OTHER in asked[0]
    # One login, accepted: it carried OTHER's password (the demo user's would be refused).
    assert [r.status for r in srv.requests(*LOGIN)] == [200]


def test_the_login_magic_sends_no_password_over_remote_http_unless_allowed(
    ip: InteractiveShell, remote_sandbox: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    url, user = remote_sandbox.remote_url, remote_sandbox.username
    monkeypatch.setenv(ENV_PASSWORD, remote_sandbox.password)
    error = usage_error(run(ip, f"%massive_login --url {url} --user {user}"))
    assert isinstance(error.__cause__, errors.ConfigError)
    assert "clear text" in str(error) and "--allow-http" in str(error)
    assert remote_sandbox.log == []  # refused before any connection

    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run(ip, f"%massive_login --url {url} --user {user} --allow-http").success
    assert any(issubclass(w.category, MassiveWarning) for w in caught)
    assert remote_sandbox.count(*LOGIN) == 1


def test_client_allow_http_sends_with_a_warning(remote_sandbox: Any, tmp_path: Path) -> None:
    url, user, password = (
        remote_sandbox.remote_url,
        remote_sandbox.username,
        remote_sandbox.password,
    )
    with pytest.raises(errors.ConfigError):
        Client(url, user, password, cache_dir=tmp_path)
    with (
        pytest.warns(MassiveWarning, match="clear text"),
        Client(url, user, password, cache_dir=tmp_path, allow_http=True) as mb,
    ):
        mb.login()
    assert remote_sandbox.count(*LOGIN) == 1
    with pytest.raises(errors.ConfigError) as caught:
        Client(url.replace("http://", f"http://{user}:{password}@"), cache_dir=tmp_path)
    assert password not in str(caught.value) + repr(caught.value)
    assert remote_sandbox.count(*LOGIN) == 1


def test_non_finite_timeouts_are_config_errors_before_any_request(srv: Any, tmp_path: Path) -> None:
    for timeout in (float("nan"), float("inf"), (1.0, float("nan"))):
        with pytest.raises(errors.ConfigError):
            Client(srv.url, srv.username, srv.password, cache_dir=tmp_path, timeout=timeout)
    assert srv.log == []
