"""Every notebook in notebooks/ runs top to bottom with a real kernel against the sandbox.

The notebooks start their own sandbox (``%massive_login --sandbox``); the kernel gets
a temporary session cache and working directory. Committed notebooks carry no outputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from massive_magic.cli import NOTEBOOKS, NotebookRun, run_notebook
from massive_magic.settings import ENV_CACHE_DIR, ENV_EMAIL, ENV_PASSWORD, ENV_URL

pytestmark = pytest.mark.slow

ALL_NOTEBOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))


def kernel_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASSIVE_")}
    env[ENV_CACHE_DIR] = str(tmp_path / "cache")
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


def outputs_text(nb: Any) -> str:
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_there_is_a_quickstart() -> None:
    assert NOTEBOOKS / "quickstart.ipynb" in ALL_NOTEBOOKS


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:40]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], NotebookRun]:
    """Each notebook run once per module (a kernel start is the slow part)."""
    runs: dict[str, NotebookRun] = {}

    def run(path: Path) -> NotebookRun:
        if path.name not in runs:
            tmp = tmp_path_factory.mktemp(path.stem)
            work = tmp / "work"
            work.mkdir()
            runs[path.name] = run_notebook(path, tmp / path.name, cwd=work, env=kernel_env(tmp))
        return runs[path.name]

    return run


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_against_the_sandbox(
    path: Path, executed: Callable[[Path], NotebookRun]
) -> None:
    run = executed(path)
    assert run.ok, run.error
    assert run.executed == run.code_cells > 0
    nb = nbformat.read(run.output, as_version=4)
    assert "error" not in {o.output_type for c in nb.cells for o in c.get("outputs", [])}
    assert list((run.output.parent / "work").iterdir()) == []  # wrote nothing in its cwd


def test_quickstart_outputs(executed: Callable[[Path], NotebookRun]) -> None:
    """The tour shows what it promises: login line, typed table, summary, card info, the
    card's link, chart, dashboard."""
    run = executed(NOTEBOOKS / "quickstart.ipynb")
    assert run.ok, run.error
    nb = nbformat.read(run.output, as_version=4)
    text = outputs_text(nb)
    assert "Logged in to http://127.0.0.1:" in text and "session valid until" in text
    assert "daily: 14,640 rows x 7 columns from 'Daily earnings by app' in " in text
    assert "europe: " in text and "from 'Earnings by country (filtered)'" in text
    assert "datetime64" in text  # daily.dtypes: dates are dates
    assert "massive-card-info" in text and "Open in Metabase" in text  # %massive_info 497
    assert "/question/497-earnings-by-country-filtered?date=2024-03-01~2024-03-31" in text
    assert "/question/484-daily-earnings-by-app" in text  # the -o summary's link
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])), (
        "no chart"
    )
    assert "Payout reconciliation" in text  # the dashboard's broken card, reported
    assert "Logged out of http://127.0.0.1:" in text


def test_kernel_without_stdin_asks_for_the_env_var(srv: Any, tmp_path: Path) -> None:
    """nbclient has no stdin: getpass raises, and the cell fails naming the variable."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext massive_magic"),
            nbformat.v4.new_code_cell(f"%massive_login --url {srv.url} --user {srv.username}"),
            nbformat.v4.new_code_cell("after = 1"),
        ]
    )
    source = tmp_path / "login.ipynb"
    nbformat.write(nb, source)
    env = kernel_env(tmp_path)
    for name in (ENV_URL, ENV_EMAIL, ENV_PASSWORD):
        env.pop(name, None)
    srv.reset_log()
    run = run_notebook(source, tmp_path / "login.out.ipynb", cwd=tmp_path, env=env)
    assert not run.ok
    assert run.error is not None and run.error.startswith("cell 2: UsageError: ")
    assert ENV_PASSWORD in run.error
    done = nbformat.read(run.output, as_version=4)
    assert done.cells[2].execution_count is None  # Run All stopped at the failing cell
    assert srv.count("POST", "/api/session") == 0


def test_sharing_replays_every_frame_offline(tmp_path: Path) -> None:
    """Record the sharing notebook against its sandbox, then replay it in a fresh kernel
    with no credentials and no sandbox: every frame is the same, and came from a snapshot."""
    import pandas as pd
    from pandas.testing import assert_frame_equal

    from massive_magic.settings import ENV_SNAPSHOT_MODE, ENV_SNAPSHOTS

    source = NOTEBOOKS / "sharing.ipynb"
    snapshots = tmp_path / "snapshots"
    frames: dict[str, Path] = {}
    runs: dict[str, NotebookRun] = {}
    for mode in ("record", "replay"):
        (tmp_path / mode / "work").mkdir(parents=True)
        frames[mode] = tmp_path / mode / "frames"
        frames[mode].mkdir()
        env = kernel_env(tmp_path / mode)  # no MASSIVE_METABASE_* credentials at all
        env.update(
            {
                ENV_SNAPSHOTS: str(snapshots),
                ENV_SNAPSHOT_MODE: mode,
                "SHARING_FRAMES": str(frames[mode]),
            }
        )
        output = tmp_path / mode / "sharing.ipynb"
        runs[mode] = run_notebook(source, output, cwd=tmp_path / mode / "work", env=env)
        assert runs[mode].ok, (mode, runs[mode].error)
    replay_text = outputs_text(nbformat.read(runs["replay"].output, as_version=4))
    assert f"Replaying snapshots of sandbox://demo from {snapshots}: no login" in replay_text
    assert "Logged in to" not in replay_text  # no sandbox, no login: nothing to send to
    assert ", from a snapshot of " in replay_text
    recorded = sorted(p.name for p in frames["record"].iterdir())
    assert recorded == sorted(p.name for p in frames["replay"].iterdir())
    assert len(recorded) == 4  # daily, europe and the dashboard's two cards
    for name in recorded:
        live = pd.read_pickle(frames["record"] / name)
        replayed = pd.read_pickle(frames["replay"] / name)
        assert_frame_equal(replayed, live, check_exact=True)
        assert list(replayed.dtypes) == list(live.dtypes)
        got, want = dict(replayed.attrs["massive"]), dict(live.attrs["massive"])
        assert want["source"] != "snapshot" and got.pop("source") == "snapshot"
        got.pop("snapshot")
        want.pop("source")
        assert got == want  # same url, card, parameters, fetched_at ...
