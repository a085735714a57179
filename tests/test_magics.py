"""The magics, driven through a real IPython shell against the sandbox over HTTP.

Every magic runs through ``run_cell`` (the path a notebook takes: input
transformation, magic dispatch, the display hook), and every expected failure
must come out as exactly ``IPython.core.error.UsageError`` with the library's
error as its cause, so that Run All and papermill stop.
"""

from __future__ import annotations

import _thread
import datetime as dt
import getpass
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

import massive_magic
from massive_magic import errors
from massive_magic.card_picker import PICKER_WORDS, CardPicker
from massive_magic.cli import CLI_WORDS
from massive_magic.errors import PYTHON_WORDS, NextStep, Step, render
from massive_magic.magic_text import INTERRUPTED, MAGIC_WORDS
from massive_magic.magics import MassiveMagics
from massive_magic.sandbox import demo
from massive_magic.settings import (
    ENV_API_KEY,
    ENV_CACHE_DIR,
    ENV_EMAIL,
    ENV_PASSWORD,
    ENV_URL,
)

MAGIC_NAMES = (
    "massive_login",
    "massive_logout",
    "massive_card",
    "massive_cards",
    "massive_info",
    "massive_dashboard",
)


@pytest.fixture(autouse=True)
def _no_my_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """``MY_KEY`` is the variable the API-key tests name; a developer's own is not theirs."""
    monkeypatch.delenv("MY_KEY", raising=False)


def magics_of(ip: InteractiveShell) -> MassiveMagics:
    found = ip.magics_manager.registry["MassiveMagics"]
    assert isinstance(found, MassiveMagics)
    return found


def run(ip: InteractiveShell, source: str) -> ExecutionResult:
    return ip.run_cell(source, store_history=True)


def usage_error(result: ExecutionResult) -> UsageError:
    """The cell failed with exactly UsageError (IPython's one-line, no-traceback class)."""
    assert not result.success
    assert type(result.error_in_exec) is UsageError, repr(result.error_in_exec)
    return result.error_in_exec


def login(ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    result = run(ip, f"%massive_login --url {srv.url} --user {srv.username}")
    assert result.success, result.error_in_exec


# -- registration, configuration, help ---------------------------------------------------


def test_load_ext_registers_the_magics_on_one_configurable_instance(ip: InteractiveShell) -> None:
    magics = magics_of(ip)
    for name in MAGIC_NAMES:
        assert ip.find_line_magic(name).__self__ is magics
    assert ip.find_cell_magic("massive_card").__self__ is magics
    assert ip.find_cell_magic("massive_dashboard").__self__ is magics
    assert ip.find_cell_magic("massive_login") is None
    assert magics in ip.configurables
    ip.run_line_magic("load_ext", "massive_magic")  # a second load is a no-op
    assert magics_of(ip) is magics
    assert sum(isinstance(c, MassiveMagics) for c in ip.configurables) == 1


def test_unload_stops_the_sandbox_and_removes_the_magics(ip: InteractiveShell) -> None:
    assert run(ip, "%massive_login --sandbox").success
    url = magics_of(ip).sandbox.url
    with urllib.request.urlopen(f"{url}/api/health", timeout=5) as answer:
        assert answer.status == 200
    ip.run_line_magic("unload_ext", "massive_magic")
    assert ip.find_line_magic("massive_card") is None
    assert not any(isinstance(c, MassiveMagics) for c in ip.configurables)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/api/health", timeout=5)
    ip.run_line_magic("load_ext", "massive_magic")  # for the fixture's teardown


def test_config_magic_sets_traitlets(ip: InteractiveShell) -> None:
    run(ip, '%config MassiveMagics.url = "https://example.invalid"')
    run(ip, "%config MassiveMagics.quiet = True")
    run(ip, "%config MassiveMagics.max_workers = 2")
    magics = magics_of(ip)
    assert (magics.url, magics.quiet, magics.max_workers) == ("https://example.invalid", True, 2)
    names = set(MassiveMagics.class_own_traits(config=True))
    assert {"url", "user", "api_key_env", "cache_dir", "timeout", "progress", "quiet"} <= names


def test_ipython_config_reaches_the_instance(shell: InteractiveShell) -> None:
    shell.config.MassiveMagics.user = "from-config@partner.example"
    try:
        assert MassiveMagics(shell).user == "from-config@partner.example"
    finally:
        del shell.config.MassiveMagics["user"]
        shell.configurables.pop()


@pytest.mark.parametrize("name", MAGIC_NAMES)
def test_every_magic_has_help_with_an_example(ip: InteractiveShell, name: str) -> None:
    doc = ip.find_line_magic(name).__doc__
    assert doc and "Example" in doc and f"%{name}" in doc


def test_help_lists_the_options(ip: InteractiveShell) -> None:
    doc = ip.find_line_magic("massive_card").__doc__
    for option in ("-o VAR", "--limit N", "--refresh", "-q"):
        assert option in doc
    doc = ip.find_line_magic("massive_login").__doc__
    for option in ("--url URL", "--user EMAIL", "--api-key-env VAR", "--sandbox", "--force"):
        assert option in doc


# -- login -------------------------------------------------------------------------------


def test_login_sandbox_prints_one_line(ip: InteractiveShell, capsys: Any) -> None:
    result = run(ip, "%massive_login --sandbox")
    assert result.success, result.error_in_exec
    server = magics_of(ip).sandbox
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith(
        f"Logged in to {server.url} as {demo.DEMO_USERNAME}; session valid until "
    )
    assert server.count("POST", "/api/session") == 1
    assert server.password not in out


def test_sandbox_ignores_credentials_in_the_environment(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv(ENV_API_KEY, "mb_not_a_key")
    monkeypatch.setenv(ENV_PASSWORD, "not-the-password")
    monkeypatch.setenv(ENV_URL, "http://127.0.0.1:9")
    result = run(ip, "%massive_login --sandbox")
    assert result.success, result.error_in_exec
    assert "session valid until" in capsys.readouterr().out
    assert run(ip, f"%massive_card {demo.SEQUENCE}").success


@pytest.mark.parametrize(
    "setup",
    [
        "%massive_login --url ftp://example.com --user a@b.example",
        "%config MassiveMagics.timeout = -1.0\n%massive_login --user a@b.example",
    ],
)
def test_bad_settings(ip: InteractiveShell, setup: str) -> None:
    error = usage_error(run(ip, setup))
    assert isinstance(error.__cause__, errors.ConfigError)


def test_cached_session_sends_no_login(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    login(ip, srv, monkeypatch)
    assert srv.count("POST", "/api/session") == 1
    ip.run_line_magic("unload_ext", "massive_magic")  # a new kernel, same cache
    ip.run_line_magic("load_ext", "massive_magic")
    monkeypatch.delenv(ENV_PASSWORD)
    capsys.readouterr()
    assert run(ip, f"%massive_login --url {srv.url} --user {srv.username}").success
    assert srv.count("POST", "/api/session") == 1
    assert capsys.readouterr().out.rstrip().endswith("(cached session).")
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    assert run(ip, f"%massive_login --url {srv.url} --user {srv.username} --force").success
    assert srv.count("POST", "/api/session") == 2


def test_password_comes_from_a_hidden_prompt(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        prompts.append(prompt)
        return srv.password

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    result = run(ip, f"%massive_login --url {srv.url} --user {srv.username}")
    assert result.success, result.error_in_exec
    assert len(prompts) == 1
    assert srv.count("POST", "/api/session") == 1


def test_kernel_without_stdin_names_the_env_var(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_stdin(prompt: str = "Password: ", stream: Any = None) -> str:
        raise StdinNotImplementedError("getpass was called, but this frontend does not support")

    monkeypatch.setattr(getpass, "getpass", no_stdin)
    error = usage_error(run(ip, f"%massive_login --url {srv.url} --user {srv.username}"))
    assert ENV_PASSWORD in str(error)
    assert isinstance(error.__cause__, errors.AuthError)
    assert srv.count("POST", "/api/session") == 0


def test_bad_password(ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, "not-the-password")
    error = usage_error(run(ip, f"%massive_login --url {srv.url} --user {srv.username}"))
    assert isinstance(error.__cause__, errors.AuthError)
    assert "not-the-password" not in str(error)
    assert srv.count("POST", "/api/session") == 1  # a failed login is never retried


def test_throttled_login(ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    srv.add_user("throttled@partner.example", "right-password")
    monkeypatch.setenv(ENV_PASSWORD, "wrong-password")
    line = f"%massive_login --url {srv.url} --user throttled@partner.example"
    for _ in range(10):
        assert type(usage_error(run(ip, line)).__cause__) is errors.AuthError
    monkeypatch.setenv(ENV_PASSWORD, "right-password")
    error = usage_error(run(ip, line))
    assert isinstance(error.__cause__, errors.LoginThrottled)
    assert "%massive_login" in str(error)


@pytest.mark.slow  # seconds of real waiting: out of the fast loop
def test_option_beats_config_beats_environment(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    monkeypatch.setenv(ENV_EMAIL, srv.username)
    monkeypatch.setenv(ENV_URL, "http://127.0.0.1:9")  # nothing listens there
    run(ip, f'%config MassiveMagics.url = "{srv.url}"')
    assert run(ip, "%massive_login").success  # %config beats the environment
    assert srv.url in capsys.readouterr().out
    error = usage_error(run(ip, "%massive_login --url http://127.0.0.1:9/"))  # option beats both
    assert "127.0.0.1:9" in str(error)


def test_cache_dir_from_config(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    configured = tmp_path / "configured-cache"
    run(ip, f'%config MassiveMagics.cache_dir = "{configured}"')
    login(ip, srv, monkeypatch)
    assert [p.suffix for p in configured.iterdir() if p.suffix == ".json"] == [".json"]
    assert not (tmp_path / "cache").exists()  # MASSIVE_MAGIC_CACHE_DIR lost to %config


def test_timeout_from_config(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(ip, "%config MassiveMagics.timeout = 0.3")
    login(ip, srv, monkeypatch)
    srv.faults.delay_next(n=10, seconds=1.0, path=f"/api/card/{demo.SEQUENCE}/query*")
    error = usage_error(run(ip, f"%massive_card {demo.SEQUENCE}"))
    assert isinstance(error.__cause__, errors.MassiveError)
    assert "within 0.3 s" in str(error)
    assert "%config MassiveMagics.timeout" in str(error)


def test_api_key_from_a_named_variable(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("MY_KEY", srv.api_key)
    result = run(ip, f"%massive_login --url {srv.url} --api-key-env MY_KEY")
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out
    assert "API key" in out and srv.api_key not in out
    df = run(ip, f"%massive_card {demo.SEQUENCE}").result
    assert len(df) == 10
    assert srv.count("POST", "/api/session") == 0


def test_api_key_variable_not_set(ip: InteractiveShell, srv: Any) -> None:
    error = usage_error(run(ip, f"%massive_login --url {srv.url} --api-key-env MY_KEY"))
    assert "MY_KEY is not set" in str(error)


# -- cards -------------------------------------------------------------------------------


def test_card_is_the_cell_result(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    result = run(ip, f"%massive_card {demo.SEQUENCE}")
    assert result.success, result.error_in_exec
    df = result.result
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["n", "label"]
    assert df["n"].tolist() == list(range(1, 11))
    assert str(df["n"].dtype) == "Int64"
    assert srv.count("POST", f"/api/card/{demo.SEQUENCE}/query*") == 1  # one api export
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1  # the name, alongside
    assert df.attrs["massive"]["name"] == "Sequence"


def test_card_into_a_variable_prints_a_summary(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    login(ip, srv, monkeypatch)
    capsys.readouterr()
    result = run(ip, f"%massive_card {demo.SEQUENCE} -o seq")
    assert result.success and result.result is None
    assert ip.user_ns["seq"].shape == (10, 2)
    out = capsys.readouterr().out.strip()
    assert out.startswith("seq: 10 rows x 2 columns from 'Sequence' in ")
    assert out.endswith(" s") and "\n" not in out
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1  # the name, looked up once
    assert run(ip, f"%massive_card {demo.SEQUENCE} -o seq").success
    assert srv.count("GET", f"/api/card/{demo.SEQUENCE}") == 1


def test_quiet_prints_nothing(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    login(ip, srv, monkeypatch)
    capsys.readouterr()
    assert run(ip, f"%massive_card {demo.SEQUENCE} -o seq -q").success
    assert capsys.readouterr().out == ""
    run(ip, "%config MassiveMagics.quiet = True")
    assert run(ip, f"%massive_card {demo.SEQUENCE} -o seq").success
    assert capsys.readouterr().out == ""


def test_cell_parameters_with_python_variables(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    run(ip, f"n_rows = 3\ncard = {demo.SEQUENCE}")
    result = run(ip, "%%massive_card {card} -o seq\n# how many\nrows = {n_rows}\n")
    assert result.success, result.error_in_exec
    assert ip.user_ns["seq"]["n"].tolist() == [1, 2, 3]
    assert ip.user_ns["seq"]["label"].tolist() == ["row 1", "row 2", "row 3"]


def test_stale_parameters_say_refresh(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card's parameters changed since they were read: the error names --refresh."""

    def run_card(tag: str) -> Any:
        return lambda values: [[i] for i in range(int(values[tag] or 0))]

    cid = srv.add_card(
        "Stale", [("n", "type/Integer")], parameters=[{"name": "rows"}], run=run_card("rows")
    )
    login(ip, srv, monkeypatch)
    assert run(ip, f"%%massive_card {cid}\nrows = 2\n").success
    srv.add_card(
        "Stale",
        [("n", "type/Integer")],
        card_id=cid,
        parameters=[{"name": "count"}],
        run=run_card("count"),
    )
    error = usage_error(run(ip, f"%%massive_card {cid}\nrows = 2\n"))
    assert isinstance(error.__cause__, errors.ParameterError)
    assert "parameters changed" in str(error) and "--refresh" in str(error)
    assert "refresh=True" not in str(error)
    result = run(ip, f"%%massive_card {cid} --refresh\ncount = 3\n")
    assert result.success, result.error_in_exec
    assert result.result["n"].tolist() == [0, 1, 2]


def test_cell_date_range_from_a_tuple(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    ip.user_ns["march"] = (dt.date(2024, 3, 1), dt.date(2024, 3, 3))
    body = 'Date = {march}\ncountry = ["DE"]\nplatform = Android\n'
    result = run(ip, f"%%massive_card {demo.EARNINGS_FILTERED}\n{body}")
    assert result.success, result.error_in_exec
    df = result.result
    assert set(df["country"]) == {"DE"} and set(df["platform"]) == {"Android"}
    days = pd.to_datetime(df["day"])
    assert (days.min(), days.max()) == (pd.Timestamp(2024, 3, 1), pd.Timestamp(2024, 3, 3))


def test_limit(ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    login(ip, srv, monkeypatch)
    result = run(ip, f"%massive_card {demo.DAILY_EARNINGS} --limit 5")
    assert result.success, result.error_in_exec
    assert len(result.result) == 5


def test_env_credentials_log_in_without_the_magic(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        (ENV_URL, srv.url),
        (ENV_EMAIL, srv.username),
        (ENV_PASSWORD, srv.password),
    ):
        monkeypatch.setenv(name, value)
    result = run(ip, f"%massive_card {demo.SEQUENCE}")
    assert result.success, result.error_in_exec
    assert srv.count("POST", "/api/session") == 1
    assert run(ip, f"%massive_card {demo.SEQUENCE}").success
    assert srv.count("POST", "/api/session") == 1  # the client is kept on the instance


def test_card_before_login_says_what_to_do(ip: InteractiveShell, srv: Any) -> None:
    error = usage_error(run(ip, f"%massive_card {demo.SEQUENCE}"))
    assert "Run %massive_login first" in str(error)
    assert srv.count() == 0


def test_card_before_login_with_only_an_email(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_URL, srv.url)
    monkeypatch.setenv(ENV_EMAIL, srv.username)
    error = usage_error(run(ip, f"%massive_card {demo.SEQUENCE}"))
    assert "Run %massive_login first" in str(error)
    assert srv.count("POST", "/api/session") == 0


@pytest.mark.parametrize(
    ("source", "cause", "fragment"),
    [
        pytest.param(
            "%massive_card 999999",
            errors.CardNotFound,
            "%massive_cards to see the cards",
        ),
        pytest.param(
            f"%massive_card {demo.REQUIRED_PARAM}",
            errors.QueryFailed,
            "%%massive_card cell body",
        ),
        pytest.param(
            "%massive_card /dashboard/12",
            errors.BadCardRef,
            "%massive_dashboard",
        ),
        pytest.param(f"%massive_card {demo.RESTRICTED}", errors.AccessDenied, ""),
        (f"%massive_card {demo.BROKEN}", errors.QueryFailed, ""),
        (f"%%massive_card {demo.SEQUENCE}\nnope = 1\n", errors.ParameterError, "nope"),
        (f"%%massive_card {demo.SEQUENCE}\nrows = [1, 2\n", errors.ParameterError, ""),
        (f"%%massive_card {demo.SEQUENCE}\njust words\n", errors.ParameterError, "Line 1"),
        (f"%%massive_card {demo.SEQUENCE}\nrows = {{nowhere}}\n", errors.ParameterError, ""),
        ("%massive_card not-a-card", errors.BadCardRef, "not-a-card"),
        ("%massive_card {nowhere}", errors.ParameterError, "nowhere"),
        (f"%massive_card {demo.SEQUENCE} -o 1x", None, "-o '1x'"),
        (f"%massive_card {demo.SEQUENCE} --limit many", None, "many"),
        ("%massive_card", None, "ref"),
    ],
)
def test_expected_failures_fail_the_cell_in_one_line(
    ip: InteractiveShell,
    srv: Any,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    cause: type[Exception] | None,
    fragment: str,
) -> None:
    login(ip, srv, monkeypatch)
    error = usage_error(run(ip, source))
    if cause is not None:
        assert isinstance(error.__cause__, cause)
    assert fragment in str(error)
    assert "Traceback" not in str(error)
    assert "Client." not in str(error)  # notebook wording: magics, not the Python API
    assert str(error).count("%massive_cards") <= 1


def test_a_failing_cell_stops_run_all(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    result = run(ip, f"seq = 'before'\n%massive_card {demo.BROKEN} -o seq\nseq = 'after'")
    usage_error(result)
    assert ip.user_ns["seq"] == "before"


def test_unexpected_errors_keep_their_traceback(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    class Bad:
        def __str__(self) -> str:
            raise RuntimeError("str() exploded")

    login(ip, srv, monkeypatch)
    ip.user_ns["bad"] = Bad()
    result = run(ip, f"%%massive_card {demo.SEQUENCE}\nlabel = x {{bad}}\n")
    assert type(result.error_in_exec) is RuntimeError
    assert "Traceback" in capsys.readouterr().out


# -- dashboards ------------------------------------------------------------------------


def test_dashboard_with_filters_into_a_variable(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    login(ip, srv, monkeypatch)
    ip.user_ns["march"] = (dt.date(2024, 3, 1), dt.date(2024, 3, 2))
    run(ip, "%config MassiveMagics.max_workers = 1")
    capsys.readouterr()
    body = 'Date = {march}\nCountry = ["DE"]'
    source = f"%%massive_dashboard {demo.OVERVIEW_DASHBOARD} -o overview\n{body}"
    with pytest.warns(errors.MassiveWarning, match="Payout reconciliation"):
        result = run(ip, source)
    assert result.success, result.error_in_exec
    overview = ip.user_ns["overview"]
    assert set(overview) == {"Earnings by country (filtered)", "Daily earnings by app"}
    assert isinstance(overview.errors["Payout reconciliation"], errors.QueryFailed)
    filtered = overview["Earnings by country (filtered)"]
    assert set(filtered["country"]) == {"DE"} and len(filtered) == 2 * 5  # 2 days x 5 apps
    out = capsys.readouterr().out.strip()
    assert out.startswith("overview: 2 of 3 cards from 'Partner overview' in ")
    assert out.endswith("(failed: 'Payout reconciliation')")


def test_dashboard_is_the_cell_result(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    with pytest.warns(errors.MassiveWarning):
        result = run(ip, f"%massive_dashboard {demo.OVERVIEW_DASHBOARD}")
    assert result.success, result.error_in_exec
    assert len(result.result) == 2


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("%massive_dashboard 999", errors.DashboardNotFound),
        ("%massive_dashboard /question/484", errors.BadCardRef),
        (f"%%massive_dashboard {demo.OVERVIEW_DASHBOARD}\nNope = 1", errors.ParameterError),
    ],
)
def test_dashboard_failures(
    ip: InteractiveShell,
    srv: Any,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    cause: type[Exception],
) -> None:
    login(ip, srv, monkeypatch)
    assert isinstance(usage_error(run(ip, source)).__cause__, cause)


# -- logout, cards list --------------------------------------------------------------------


def test_logout(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    login(ip, srv, monkeypatch)
    monkeypatch.delenv(ENV_PASSWORD)
    capsys.readouterr()
    assert run(ip, "%massive_logout").success
    assert capsys.readouterr().out == f"Logged out of {srv.url}.\n"
    assert srv.count("DELETE", "/api/session") == 1
    assert magics_of(ip).client is None
    assert "Run %massive_login first" in str(usage_error(run(ip, "%massive_card 1")))
    assert run(ip, "%massive_logout").success
    assert capsys.readouterr().out == "Not logged in.\n"


def test_cards_lists_what_the_user_can_read(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    result = run(ip, "%massive_cards")
    assert result.success, result.error_in_exec
    assert type(result.result).__name__ == "CardPicker"
    assert srv.count("GET", "/api/card") == 1


def test_cards_before_login(ip: InteractiveShell) -> None:
    assert "Run %massive_login first" in str(usage_error(run(ip, "%massive_cards")))


def test_load_ext_imports_nothing_heavy(tmp_path: Any) -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'massive_magic')\n"
        "heavy = ('requests', 'urllib3', 'pandas', 'pyarrow', 'ipywidgets', 'tqdm', 'orjson',"
        " 'platformdirs', 'massive_magic.client', 'massive_magic.sandbox')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "IPYTHONDIR": str(tmp_path)}  # its history file goes there
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == ""


def test_no_module_global_state() -> None:
    """Two shells' worth of instances do not share a client or a sandbox."""
    a, b = MassiveMagics(None), MassiveMagics(None)
    a.client = object()  # type: ignore[assignment]
    assert b.client is None and b.sandbox is None


# -- next steps in the notebook's words (issue #14) --------------------------------------------

EDGE_WORDS: dict[str, Mapping[Step, str]] = {
    "python": PYTHON_WORDS,
    "magics": MAGIC_WORDS,
    "cli": CLI_WORDS,
    "picker": PICKER_WORDS,
}


@pytest.mark.parametrize("edge", sorted(EDGE_WORDS))
@pytest.mark.parametrize("step", list(Step), ids=lambda s: s.value)
def test_every_step_has_words_at_every_edge(edge: str, step: Step) -> None:
    words = NextStep(step, ref=484, names=("MASSIVE_X",)).words(EDGE_WORDS[edge])
    assert words and words[-1] == "."
    if edge != "python":
        for python_only in ("Client", "params=", "refresh=True", "password=", "username="):
            assert python_only not in words
    if edge == "cli":
        assert "%" not in words  # no magics in a shell


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            errors.CardNotFound("Card 9 not found", next_steps=[NextStep(Step.LIST_CARDS)]),
            "Card 9 not found. Run %massive_cards to see the cards you can read.",
        ),
        (
            errors.QueryFailed(
                "Card 515 failed: pick a value for 'App'.",
                next_steps=[
                    NextStep(Step.GIVE_PARAMETER, names=("app",)),
                    NextStep(Step.SHOW_PARAMETERS, ref=515),
                ],
            ),
            "Card 515 failed: pick a value for 'App'. Give app a value in the %%massive_card "
            "cell body (name = value). %massive_cards shows its parameters.",
        ),
        (
            errors.BadCardRef(
                "'/dashboard/12' is a dashboard, not a card.",
                next_steps=[NextStep(Step.READ_DASHBOARD, ref=12)],
            ),
            "'/dashboard/12' is a dashboard, not a card. Read the whole dashboard with "
            "%massive_dashboard 12.",
        ),
        (
            errors.LoginThrottled(
                "Logins are locked for 15 min", next_steps=[NextStep(Step.WAIT_THEN_LOGIN)]
            ),
            "Logins are locked for 15 min. Then run %massive_login once; every attempt extends "
            "the lock.",
        ),
        (
            errors.ResponseError(
                "No answer within 0.3 s",
                next_steps=[NextStep(Step.RAISE_TIMEOUT), NextStep(Step.REFRESH)],
            ),
            "No answer within 0.3 s. Raise it: %config MassiveMagics.timeout = <seconds>. "
            "Run it again with --refresh.",
        ),
    ],
)
def test_magic_words_render_the_steps(exc: errors.MassiveError, expected: str) -> None:
    assert render(exc, MAGIC_WORDS) == expected


def test_login_without_a_user_names_the_option_and_the_variable(
    ip: InteractiveShell, srv: Any
) -> None:
    error = usage_error(run(ip, f"%massive_login --url {srv.url}"))
    assert isinstance(error.__cause__, errors.AuthError)
    assert str(error) == (
        f"No Metabase user name for {srv.url}. Pass --user EMAIL to %massive_login, or set "
        f"{ENV_EMAIL}. Or use an API key: set {ENV_API_KEY}, or name your variable with "
        "%massive_login --api-key-env VAR."
    )
    assert srv.count() == 0


def test_password_step_in_notebook_words(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_stdin(prompt: str = "Password: ", stream: Any = None) -> str:
        raise StdinNotImplementedError("getpass was called, but this frontend does not support")

    monkeypatch.setattr(getpass, "getpass", no_stdin)
    error = usage_error(run(ip, f"%massive_login --url {srv.url} --user {srv.username}"))
    assert str(error) == (
        f"No password: this kernel cannot prompt for one. Set {ENV_PASSWORD} in the kernel's "
        "environment, or run %massive_login interactively."
    )


# -- issue #10: cell values ---------------------------------------------------------------------


def _sent(srv: Any, card: int) -> dict[str, Any]:
    """The parameters of the one query sent for ``card``, by template tag."""
    from urllib.parse import parse_qs

    [request] = srv.requests("POST", f"/api/card/{card}/query*")
    if request.path.endswith("/query/api"):
        params = json.loads(parse_qs(request.body.decode())["parameters"][0])
    else:
        params = json.loads(request.body)["parameters"]
    return {p["target"][1][1]: p for p in params}


@pytest.mark.parametrize("word", ["None", "none", "null", "NULL"])
def test_none_in_a_cell_means_no_filter(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    login(ip, srv, monkeypatch)
    body = f'date = "2024-01-01~2024-01-02"\nplatform = {word}\n'
    result = run(ip, f"%%massive_card {demo.EARNINGS_FILTERED}\n{body}")
    assert result.success, result.error_in_exec
    assert len(result.result) > 0 and result.result["platform"].nunique() > 1
    assert _sent(srv, demo.EARNINGS_FILTERED)["platform"]["value"] is None


@pytest.mark.parametrize(
    ("line", "fragment", "requests"),
    [
        ('country = ["DE", "GB"', "starts like a JSON list but is not valid JSON", 0),
        ('country = {"DE"', "starts like a JSON object but is not valid JSON", 0),
        ("country = 42", "write '42' in quotes", 1),  # the declarations, no query
        ("date = 2024-13-45", "real calendar date", 1),
        ('date = ["2024-01-01", "2024-02-30"]', "real calendar date", 1),
    ],
)
def test_a_value_that_cannot_be_meant_is_refused_before_the_query(
    ip: InteractiveShell,
    srv: Any,
    monkeypatch: pytest.MonkeyPatch,
    line: str,
    fragment: str,
    requests: int,
) -> None:
    login(ip, srv, monkeypatch)
    srv.reset_log()
    error = usage_error(run(ip, f"%%massive_card {demo.EARNINGS_FILTERED}\n{line}\n"))
    assert isinstance(error.__cause__, errors.ParameterError)
    assert fragment in str(error)
    assert srv.count("POST") == 0
    assert srv.count() == requests


# -- issue #10: warnings, interrupts, stray arguments --------------------------------------------


def test_a_massive_warning_is_shown_as_its_message(ip: InteractiveShell) -> None:
    shown = warnings.formatwarning(
        errors.IncompleteResultWarning("Card 7 stopped at 2,000 rows."),
        errors.IncompleteResultWarning,
        "/somewhere/massive_magic/cards.py",
        354,
        "    warnings.warn(...)",
    )
    assert shown == "Card 7 stopped at 2,000 rows.\n"
    other = warnings.formatwarning(UserWarning("x"), UserWarning, "/a/b.py", 3, "line()")
    assert other == "/a/b.py:3: UserWarning: x\n  line()\n"  # everyone else's as before
    ip.run_line_magic("unload_ext", "massive_magic")
    try:
        assert warnings.formatwarning is warnings._formatwarning_orig  # type: ignore[attr-defined]
    finally:
        ip.run_line_magic("load_ext", "massive_magic")


def test_warnings_stay_catchable_with_the_extension_loaded(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert run(ip, f"%massive_dashboard {demo.OVERVIEW_DASHBOARD} -o overview").success
    assert [type(w.message) for w in seen] == [errors.MassiveWarning]
    with warnings.catch_warnings():
        warnings.simplefilter("error", errors.MassiveWarning)
        result = run(ip, f"%massive_dashboard {demo.OVERVIEW_DASHBOARD}")
    assert isinstance(result.error_in_exec, errors.MassiveWarning)


def test_warnings_in_a_real_shell_print_only_the_message(tmp_path: Any) -> None:
    """What a notebook user sees on stderr: the message, no module path, no source line."""
    code = (
        "import warnings\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "warnings.simplefilter('default')\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'massive_magic')\n"
        "ip.run_line_magic('massive_login', '--sandbox')\n"
        f"ip.run_cell('%massive_dashboard {demo.OVERVIEW_DASHBOARD} -o overview -q')\n"
        "ip.run_line_magic('unload_ext', 'massive_magic')\n"
    )
    env = {**os.environ, "IPYTHONDIR": str(tmp_path), ENV_CACHE_DIR: str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stderr.startswith("1 of 3 cards of dashboard 12 failed"), out.stderr
    assert "Payout reconciliation" in out.stderr
    assert "magics.py" not in out.stderr and "client.py" not in out.stderr
    assert "Warning:" not in out.stderr and "warnings.warn" not in out.stderr


def test_an_interrupted_read_is_one_line_and_fails_the_cell(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Ctrl-C (Jupyter's interrupt button) during a read: one line, nothing stored, and the
    cell still fails so Run All stops."""
    login(ip, srv, monkeypatch)
    srv.faults.delay_next(n=1, seconds=1.0, path=f"/api/card/{demo.SEQUENCE}/query*")

    def interrupt_once_the_read_waits() -> None:
        for _ in range(3000):  # bounded: at most ~30 s
            if not srv.faults.pending:  # the server took the request and holds the answer
                _thread.interrupt_main()
                return
            time.sleep(0.01)

    ip.user_ns["seq"] = "before"
    capsys.readouterr()
    thread = threading.Thread(target=interrupt_once_the_read_waits, daemon=True)
    thread.start()
    result = run(ip, f"%massive_card {demo.SEQUENCE} -o seq")
    thread.join(timeout=30)
    error = usage_error(result)
    assert str(error) == INTERRUPTED
    assert isinstance(error.__cause__, KeyboardInterrupt)
    assert ip.user_ns["seq"] == "before"
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert run(ip, f"%massive_card {demo.SEQUENCE} -o seq").success  # the client lives on
    assert len(ip.user_ns["seq"]) == 10


@pytest.mark.parametrize("source", ["%massive_logout now", "%massive_cards 484"])
def test_stray_arguments_are_refused(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    login(ip, srv, monkeypatch)
    srv.reset_log()
    error = usage_error(run(ip, source))
    assert "unrecognized arguments" in str(error)
    assert srv.count() == 0
    assert magics_of(ip).client is not None  # still logged in


# -- issue #10: the picker in a notebook ----------------------------------------------------------


def test_picker_load_stores_the_frame_under_the_name_in_its_code(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    picker = run(ip, "%massive_cards").result
    assert isinstance(picker, CardPicker)
    picker.select(demo.SEQUENCE)
    picker.set_params(rows=3)
    picker.load_button.click()
    assert picker.code is not None and picker.code.startswith(
        f"%%massive_card {demo.SEQUENCE} -o df"
    )
    assert ip.user_ns["df"] is picker.df
    assert ip.user_ns["df"]["n"].tolist() == [1, 2, 3]
    assert "Stored in df." in picker.status.value


def test_picker_without_a_client_uses_the_notebook_login(
    ip: InteractiveShell, srv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(ip, srv, monkeypatch)
    monkeypatch.delenv(ENV_PASSWORD)  # nothing in the environment to log in with
    ip.user_ns["massive_magic"] = massive_magic
    result = run(ip, "picked = massive_magic.picker()")
    assert result.success, result.error_in_exec
    picker = ip.user_ns["picked"]
    assert picker.client is magics_of(ip).client
    assert demo.SEQUENCE in {card_id for _, card_id in picker.results.options}
    assert srv.count("POST", "/api/session") == 1  # the magic's login, reused
    picker.select(demo.SEQUENCE)
    picker.load()
    assert ip.user_ns["df"] is picker.df
    ip.user_ns.pop("massive_magic")
