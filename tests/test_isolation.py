"""The test session writes nothing outside temporary directories (``tests/conftest.py``).

Before this check existed, every run put ~111 test commands, sandbox URLs included, into
the developer's real ``~/.ipython/profile_default/history.sqlite``, where IPython then
offered them as autosuggestions; kernels left connection files in the real Jupyter
runtime directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from massive_magic.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def test_the_shell_keeps_its_history_in_memory(ip: InteractiveShell, session_home: Path) -> None:
    assert InteractiveShell.instance() is ip  # what get_ipython() gives the magics
    assert str(ip.history_manager.hist_file) == ":memory:"
    assert Path(ip.profile_dir.location).is_relative_to(session_home)


def test_a_magic_run_writes_nothing_outside_temporary_directories(
    ip: InteractiveShell, srv: Sandbox, write_watch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASSIVE_METABASE_PASSWORD", srv.password)
    before = len(write_watch.seen)
    for source in (f"%massive_login --url {srv.url} --user {srv.username}", "%massive_card 512"):
        result = ip.run_cell(source, store_history=True)
        assert result.success, result.error_in_exec
    assert ip.history_manager.input_hist_raw[-1] == "%massive_card 512"  # history: in memory
    assert write_watch.seen[before:] == []


def test_per_user_paths_point_into_the_session_directory(
    session_home: Path, real_home: Path
) -> None:
    import jupyter_core.paths
    import platformdirs
    from IPython.paths import get_ipython_dir

    from massive_magic.settings import default_cache_dir

    paths = [
        Path.home(),
        Path(os.path.expanduser("~/.ipython")),
        Path(get_ipython_dir()),
        Path(jupyter_core.paths.jupyter_runtime_dir()),
        Path(jupyter_core.paths.jupyter_data_dir()),
        Path(jupyter_core.paths.jupyter_config_dir()),
        Path(platformdirs.user_cache_dir("anything")),
        Path(platformdirs.user_config_dir("anything")),
        Path(os.environ["MPLCONFIGDIR"]),
        default_cache_dir(),
    ]
    for path in paths:
        assert path.is_relative_to(session_home), path
        assert not path.is_relative_to(real_home), path


def test_a_test_starts_without_a_developers_settings(tmp_path: Path) -> None:
    assert not [name for name in os.environ if name.startswith("MASSIVE_METABASE_")]
    assert os.environ["MASSIVE_MAGIC_CACHE_DIR"] == str(tmp_path / "cache")


# -- the watch itself: it sees the writes it exists for (events raised, nothing written) ---


def place(args: tuple[object, ...], real_home: Path) -> tuple[object, ...]:
    """``{home}`` and ``{root}`` in string arguments: the real home and the repository."""
    return tuple(a.format(home=real_home, root=ROOT) if isinstance(a, str) else a for a in args)


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("sqlite3.connect", ("{home}/.ipython/profile_default/history.sqlite",)),
        ("open", ("{home}/.local/share/jupyter/runtime/kernel-1.json", "w", 577)),
        ("open", ("{root}/notebooks/quickstart.executed.ipynb", None, os.O_WRONLY)),
        ("os.replace", ("{root}/x.tmp", "{root}/notebooks/x.ipynb", -1, -1)),
        ("os.mkdir", ("{home}/.cache/massive-magic", 0o700, -1)),
        ("open", ("{root}/artifacts/browser/picker.png", "wb", 577)),
    ],
)
def test_the_watch_sees_a_write_outside_temporary_directories(
    write_watch: Any, real_home: Path, event: str, args: tuple[object, ...]
) -> None:
    before = len(write_watch.seen)
    sys.audit(event, *place(args, real_home))  # the event only: no file is touched
    found, write_watch.seen[before:] = write_watch.seen[before:], []
    assert found and all(line.startswith(f"{event}: ") for line in found), found


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("open", ("{home}/.ipython/profile_default/history.sqlite", "rb", 0)),
        ("sqlite3.connect", ("file:{home}/.ipython/x.sqlite?mode=ro",)),
        ("sqlite3.connect", (":memory:",)),
        ("open", ("{root}/tests/__pycache__/x.pyc", None, os.O_WRONLY)),
        ("open", (3, "w", os.O_WRONLY)),
        # pytest's own cache: written into pytest-cache-files-*, renamed to .pytest_cache
        ("os.mkdir", ("{root}", 0o777, -1)),
        ("open", ("{root}/pytest-cache-files-abc/README.md", "w", 577)),
        ("os.rename", ("{root}/pytest-cache-files-abc", "{root}/.pytest_cache", -1, -1)),
    ],
)
def test_the_watch_lets_reads_and_allowed_places_pass(
    write_watch: Any, real_home: Path, event: str, args: tuple[object, ...]
) -> None:
    before = len(write_watch.seen)
    sys.audit(event, *place(args, real_home))
    assert write_watch.seen[before:] == []


def test_the_watch_follows_a_path_relative_to_a_directory_descriptor(
    write_watch: Any, tmp_path: Path
) -> None:
    """shutil.rmtree (and so TemporaryDirectory) removes ``name`` relative to a dir's fd."""
    before = len(write_watch.seen)
    for directory, expected in ((tmp_path, 0), (ROOT, 1)):
        fd = os.open(directory, os.O_RDONLY)
        try:
            sys.audit("os.rmdir", "work", fd)
        finally:
            os.close(fd)
        found, write_watch.seen[before:] = write_watch.seen[before:], []
        assert found == [f"os.rmdir: {directory / 'work'}"] * expected
