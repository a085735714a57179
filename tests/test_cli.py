"""The ``massive-magic`` command: demo (a real kernel) and sandbox (a real server process)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from massive_magic import Client, cli, errors
from massive_magic.errors import NextStep, Step
from massive_magic.sandbox import Sandbox, demo

SCRIPT = shutil.which("massive-magic", path=str(Path(sys.executable).parent))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_console_script_is_installed() -> None:
    assert SCRIPT is not None


@pytest.mark.parametrize("argv", [[], ["nope"], ["demo", "--bogus"], ["sandbox", "--port", "x"]])
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage: massive-magic" in capsys.readouterr().err


def test_help_names_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "demo" in out and "sandbox" in out


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
            "massive-magic: No Metabase user name for https://mb.example. Set "
            "MASSIVE_METABASE_EMAIL (e.g. export MASSIVE_METABASE_EMAIL=you@partner.com). Or "
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


def test_an_expected_failure_exits_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(output: Path, notebook: Path | None = None) -> int:
        raise errors.ConfigError("No sandbox here", next_steps=[NextStep(Step.USE_HTTPS)])

    monkeypatch.setattr(cli, "demo", refuse)
    assert cli.main(["demo"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "massive-magic: No sandbox here. Use an https:// URL, or pass --allow-http if you must.\n"
    )
    assert captured.out == ""
