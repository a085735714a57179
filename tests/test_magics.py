"""The magics, driven through a real IPython shell against the sandbox over HTTP.

Every magic runs through ``run_cell`` (the path a notebook takes: input
transformation, magic dispatch, the display hook), and every expected failure
must come out as exactly ``IPython.core.error.UsageError`` with the library's
error as its cause, so that Run All and papermill stop.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from massive_magic import errors
from massive_magic.magics import MassiveMagics
from massive_magic.sandbox import demo
from massive_magic.settings import (
    ENV_API_KEY,
    ENV_EMAIL,
    ENV_PASSWORD,
    ENV_URL,
)

MAGIC_NAMES = (
    "massive_login",
    "massive_logout",
    "massive_card",
    "massive_cards",
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
        ("%massive_card 999999", errors.CardNotFound, "%massive_cards to see the cards"),
        (f"%massive_card {demo.REQUIRED_PARAM}", errors.QueryFailed, "%%massive_card cell body"),
        ("%massive_card /dashboard/12", errors.BadCardRef, "%massive_dashboard"),
        (f"%massive_card {demo.RESTRICTED}", errors.AccessDenied, ""),
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
