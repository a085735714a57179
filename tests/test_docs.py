"""The README tells the truth: its two commands, its magics and its examples.

Like sqlite-utils' documentation tests: every magic is documented, and every
README example runs (against the sandbox instead of Massive's server).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from massive_magic.errors import MassiveWarning
from massive_magic.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_readme_opens_with_the_two_commands() -> None:
    first = BLOCK.search(README)
    assert first is not None and first.start() < README.index("\n## ")
    lines = [line for line in first.group(2).splitlines() if line.strip()]
    assert len(lines) == 2
    assert re.match(r"^pip install -e '\.\[notebook\]' && massive-magic demo\s+#", lines[0])
    assert re.match(r"^pip install -e '\.\[test\]' && python -m pytest\s+#", lines[1])


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    pattern = re.search(r"grep -m1 -E '([^']+)' README\.md", ci)
    assert pattern is not None, ".ci/run must take its test command from the README"
    matches = [line for line in README.splitlines() if re.search(pattern.group(1), line)]
    assert matches and "python -m pytest" in matches[0]
    assert 'eval "$test_command"' in ci


def test_every_magic_is_documented(ip: InteractiveShell) -> None:
    registered = {
        name
        for kind in ("line", "cell")
        for name in ip.magics_manager.magics[kind]
        if name.startswith("massive_")
    }
    assert registered, "the extension registered no magics"
    table = section("In a notebook")
    for name in sorted(registered):
        assert f"%{name}" in table, f"%{name} is missing from the README's magic table"


def test_notebook_examples_run(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    """Each notebook block of the README, after a sandbox login instead of the real one."""
    assert ip.run_line_magic("massive_login", "--sandbox") is None
    examples = [b for b in blocks("python") if "%" in b or "import datetime" in b]
    examples = [b for b in examples if "%massive_login" not in b and "%load_ext" not in b]
    assert len(examples) >= 2
    for source in examples:
        result = ip.run_cell(source)
        assert result.success, f"README example failed:\n{source}\n{result.error_in_exec}"
    earnings = ip.user_ns["earnings"]
    assert set(earnings["country"].unique()) <= {"US", "DE"}
    assert set(earnings["platform"].unique()) <= {"Android"}
    assert len(earnings) > 0


def test_script_example_runs(
    sandbox: Sandbox, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (script,) = [b for b in blocks("python") if "from massive_magic import Client" in b]
    monkeypatch.setenv("MASSIVE_METABASE_URL", sandbox.url)
    monkeypatch.setenv("MASSIVE_METABASE_EMAIL", sandbox.username)
    monkeypatch.setenv("MASSIVE_METABASE_PASSWORD", sandbox.password)
    namespace: dict[str, Any] = {}
    # The demo dashboard holds a failing card: the others come back, with a warning naming it.
    with pytest.warns(MassiveWarning, match="Payout reconciliation"):
        exec(compile(script, "README.md", "exec"), namespace)
    assert len(namespace["daily"]) > 2000
    assert set(namespace["eu"]["country"].unique()) <= {"DE", "GB"}
    assert namespace["overview"].errors.keys() == {"Payout reconciliation"}
    assert len(namespace["overview"]) >= 2
