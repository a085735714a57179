"""The ``massive-magic`` command: demo (a real kernel) and sandbox (a real server process)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from massive_magic import Client, cli, errors
from massive_magic.errors import NextStep, Step
from massive_magic.sandbox import Sandbox, demo
from massive_magic.settings import ENV_API_KEY, ENV_EMAIL, ENV_PASSWORD, ENV_URL

SCRIPT = shutil.which("massive-magic", path=str(Path(sys.executable).parent))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_console_script_is_installed() -> None:
    assert SCRIPT is not None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["demo", "--bogus"],
        ["sandbox", "--port", "x"],
        ["sandbox", "--port", "80000"],  # was a traceback (OverflowError)
        ["sandbox", "--port", "-1"],
        ["export"],
        ["export", "1", "--limit", "-5"],
        ["export", "1", "--format", "xlsx"],
        ["cards", "--bogus"],
    ],
)
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("massive-magic") and ": error: " in err
    assert err.endswith("--help for usage.\n") and err.count("\n") == 1, err  # one line


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("export", "cards", "login", "logout", "demo", "sandbox"):
        assert f"\n    {command} " in out, command


@pytest.mark.parametrize("command", ["export", "cards", "login", "logout"])
def test_help_lists_the_exit_codes(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    codes = out.split("exit codes:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in codes if line[:5].strip().isdigit()] == [
        "0", "1", "2", "3", "4", "5", "130"
    ]  # fmt: skip
    assert "MASSIVE_METABASE_API_KEY" in out and "--allow-http" in out


def test_the_notebooks_are_found_next_to_the_package() -> None:
    assert Path(cli.__file__).resolve().parents[1] / "notebooks" == cli.NOTEBOOKS
    assert (cli.NOTEBOOKS / cli.QUICKSTART).is_file()


def test_demo_without_the_notebook_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.demo(tmp_path / "out.ipynb", notebook=tmp_path / "missing.ipynb") == 2
    err = capsys.readouterr().err
    assert "missing.ipynb not found" in err
    assert not (tmp_path / "out.ipynb").exists()


def test_demo_names_the_extra_when_nbclient_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "nbclient", None)  # "not installed"
    assert cli.demo(tmp_path / "out.ipynb") == 2
    err = capsys.readouterr().err
    assert "needs nbclient" in err and "pip install 'massive-magic[notebook]'" in err
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.slow
def test_demo_writes_the_executed_quickstart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASSIVE_")}
    assert SCRIPT is not None
    done = subprocess.run(
        [SCRIPT, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = tmp_path / "quickstart.executed.ipynb"
    assert f"Wrote {written}" in done.stdout
    nb = nbformat.read(written, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert f"{len(code)} of {len(code)} code cells ran in " in done.stdout
    assert all(c.execution_count for c in code)
    assert list(tmp_path.iterdir()) == [written]  # the kernel worked in a temp dir


@pytest.mark.slow
def test_demo_fails_on_a_failing_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext massive_magic"),
            nbformat.v4.new_code_cell("%massive_login --sandbox"),
            nbformat.v4.new_code_cell(f"%massive_card {demo.BROKEN}"),
            nbformat.v4.new_code_cell("never = True"),
        ]
    )
    source = tmp_path / "broken.ipynb"
    nbformat.write(nb, source)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MASSIVE_MAGIC_CACHE_DIR", str(cache))
    out = tmp_path / "out" / "broken.executed.ipynb"
    assert cli.demo(out, notebook=source) == 1
    captured = capsys.readouterr()
    assert "Failed at cell 3: UsageError: " in captured.err
    assert "3 of 4 code cells ran" in captured.out
    executed = nbformat.read(out, as_version=4)
    assert "UsageError: " in json.dumps(executed.cells[2].outputs)  # shown in the copy
    assert executed.cells[3].execution_count is None
    assert cache.is_dir()  # MASSIVE_MAGIC_CACHE_DIR set by the caller is respected


@pytest.mark.slow
def test_sandbox_serves_in_the_foreground(tmp_path: Path) -> None:
    assert SCRIPT is not None
    port = free_port()
    proc = subprocess.Popen(
        [SCRIPT, "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/health", timeout=2
                ) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the sandbox did not come up"
                time.sleep(0.2)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in output


# -- errors: one line on stderr, in a shell's words ------------------------------------------


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (
            errors.AuthError(
                "No Metabase user name for https://mb.example",
                next_steps=[
                    NextStep(Step.SET_USER, names=("MASSIVE_METABASE_EMAIL",)),
                    NextStep(Step.USE_API_KEY, names=("MASSIVE_METABASE_API_KEY",)),
                ],
            ),
            "massive-magic: No Metabase user name for https://mb.example. Pass --user EMAIL, or "
            "set MASSIVE_METABASE_EMAIL (e.g. export MASSIVE_METABASE_EMAIL=you@partner.com). Or "
            "set MASSIVE_METABASE_API_KEY to use an API key.",
        ),
        (
            errors.QueryFailed("Card 503 failed:\n  relation does not exist"),
            "massive-magic: Card 503 failed: relation does not exist",
        ),
        (ValueError("not ours"), "massive-magic: not ours"),
    ],
)
def test_error_line_is_one_line_in_shell_words(exc: BaseException, line: str) -> None:
    assert cli.error_line(exc) == line


def test_a_real_library_error_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    mb = Client(sandbox.url, cache_dir=tmp_path, progress=False)
    with mb, pytest.raises(errors.AuthError) as info:
        mb.login()  # no user name, no API key
    line = cli.error_line(info.value)
    assert line.startswith(f"massive-magic: No Metabase user name for {sandbox.url}")
    assert "\n" not in line
    assert sandbox.count() == 0


def test_an_expected_failure_exits_with_its_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(output: Path, notebook: Path | None = None) -> int:
        raise errors.ConfigError("No sandbox here", next_steps=[NextStep(Step.USE_HTTPS)])

    monkeypatch.setattr(cli, "demo", refuse)
    assert cli.main(["demo"]) == 2  # a setting: usage
    captured = capsys.readouterr()
    assert captured.err == (
        "massive-magic: No sandbox here. Use an https:// URL, or pass --allow-http (or set "
        "MASSIVE_MAGIC_ALLOW_HTTP=1) if you must.\n"
    )
    assert captured.out == ""


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ConfigError("x"), 2),
        (errors.ParameterError("x"), 2),
        (errors.BadCardRef("x"), 2),
        (errors.AuthError("x"), 3),
        (errors.LoginThrottled("x"), 3),
        (errors.CardNotFound("x"), 4),
        (errors.DashboardNotFound("x"), 4),
        (errors.AccessDenied("x"), 4),
        (errors.QueryFailed("x"), 5),
        (errors.ResponseError("x"), 5),
        (errors.IncompleteResultWarning("x"), 5),
        (errors.SnapshotError("x"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_exit_code_of_each_failure(exc: BaseException, code: int) -> None:
    assert cli.exit_code(exc) == code


# -- cards, login, logout, and export's usage errors, in this process -----------------------


@pytest.fixture
def env(srv: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox's URL and demo account in the environment, as a script would have them."""
    monkeypatch.setenv(ENV_URL, srv.url)
    monkeypatch.setenv(ENV_EMAIL, srv.username)
    monkeypatch.setenv(ENV_PASSWORD, srv.password)
    return srv


def test_cards_as_a_table_and_as_json(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "COLLECTION", "PARAMETERS"]
    sequence = next(line for line in lines if line.startswith(f"{demo.SEQUENCE} "))
    assert "Sequence" in sequence and sequence.endswith("rows*")  # * = required
    assert cli.main(["cards", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert [sorted(card) for card in cards] == [["collection", "id", "name", "parameters"]] * len(
        cards
    )
    by_id = {card["id"]: card for card in cards}
    assert by_id[demo.ALL_TYPES]["name"] == "All column types"
    assert [p["slug"] for p in by_id[demo.EARNINGS_FILTERED]["parameters"]] == [
        "date", "country", "platform", "min_earnings"
    ]  # fmt: skip
    assert len(lines) - 1 == len(cards) and demo.RESTRICTED not in by_id


def test_login_caches_and_logout_forgets(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["login"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Logged in to {env.url} as {env.username}; session valid until ")
    monkeypatch.delenv(ENV_PASSWORD)  # the cached session serves every command now
    env.reset_log()
    assert cli.main(["login"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(cached session).")
    assert cli.main(["cards", "--json"]) == 0
    capsys.readouterr()
    assert env.count("POST", "/api/session") == 0
    assert cli.main(["logout"]) == 0
    assert capsys.readouterr().out == f"Logged out of {env.url}.\n"
    assert cli.main(["cards"]) == 3  # no session, no password, stdin not a terminal
    err = capsys.readouterr().err
    assert err.startswith(f"massive-magic: No password for {env.username}") and err.count("\n") == 1
    assert "Set MASSIVE_METABASE_PASSWORD in the environment, or run massive-magic login" in err


def test_login_without_a_user_or_with_an_api_key(
    srv: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["login", "--url", srv.url]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"massive-magic: No Metabase user name for {srv.url}. Pass --user EMAIL")
    monkeypatch.setenv(ENV_API_KEY, srv.api_key)
    assert cli.main(["login", "--url", srv.url]) == 0
    out = capsys.readouterr().out  # the words %massive_login prints
    assert out.startswith(f"Logged in to {srv.url} as ") and out.count("\n") == 1
    assert out.endswith(" with an API key (no session to expire).\n")
    assert srv.count("POST", "/api/session") == 0


def test_export_usage_errors_come_before_any_request(
    env: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env.reset_log()
    cases = {
        "Cannot tell the format of": ["-o", str(tmp_path / "out.xlsx")],
        "does not exist": ["-o", str(tmp_path / "missing" / "out.csv")],
        "is a directory": ["-o", str(tmp_path)],
        "-p 'country' is not NAME=VALUE": ["-p", "country"],
        "-p label: {x} would name a notebook variable": ["-p", "label={x}"],
        "http://example.org:3000 is plain http:// to another machine": [
            "--url", "http://example.org:3000"
        ],
        "Timeouts must be positive": ["--timeout", "0"],
    }  # fmt: skip
    for expected, argv in cases.items():
        assert cli.main(["export", str(demo.ALL_TYPES), *argv]) == 2, expected
        err = capsys.readouterr().err
        assert err.startswith("massive-magic: ") and expected in err, err
        assert err.count("\n") == 1
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main(["export", str(demo.ALL_TYPES), "--format", "parquet"]) == 2
    assert "binary and standard output is a terminal" in capsys.readouterr().err
    assert env.count() == 0
    assert list(tmp_path.iterdir()) == []  # not even the session cache


def test_export_json_lines_to_standard_output(
    env: Sandbox, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    argv = ["export", str(demo.SEQUENCE), "-p", "rows=3", "-o", "-", "--format", "json", "-q"]
    assert cli.main(argv) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == (
        b'{"n":1,"label":"row 1"}\n{"n":2,"label":"row 2"}\n{"n":3,"label":"row 3"}\n'
    )
    assert captured.err == b""


# -- the README's "In a pipeline" ----------------------------------------------------------


def _pipeline_section() -> str:
    readme = (Path(cli.__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## In a pipeline")
    return readme[start : readme.index("\n## ", start + 1)]


def test_readme_documents_every_command_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    section = _pipeline_section()
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = capsys.readouterr().out.split("COMMAND\n", 2)[-1]
    commands = re.findall(r"^    (\w+) ", listed, re.M)
    assert len(commands) >= 6
    for command in commands:
        if command not in ("demo", "sandbox"):  # the README shows those elsewhere
            assert f"`massive-magic {command}" in section, command
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M)
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    helped = capsys.readouterr().out.split("exit codes:\n", 1)[1]
    assert [code for code, _ in rows] == re.findall(r"^\s+(\d+)  ", helped, re.M)


def test_readme_pipeline_examples_run(
    env: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's commands without a pipe or a real account, in this process."""
    monkeypatch.chdir(tmp_path)
    (block,) = re.findall(r"```bash\n(.*?)```", _pipeline_section(), re.S)
    ran = 0
    for line in block.splitlines():
        command = line.split("  #", 1)[0].strip()
        if not command.startswith("massive-magic ") or "|" in command or " login" in command:
            continue
        assert cli.main(shlex.split(command)[1:]) == 0, command
        ran += 1
    assert ran == 2
    eu = pd.read_parquet(tmp_path / "eu.parquet")
    assert set(eu["country"]) == {"DE", "GB"}
    assert json.loads(capsys.readouterr().out.splitlines()[-1])[0]["id"] == demo.DAILY_EARNINGS
