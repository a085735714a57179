"""The ``massive-magic`` command.

    massive-magic demo [--output PATH]   run notebooks/quickstart.ipynb against the sandbox
    massive-magic sandbox [--port N]     serve the demo Metabase in the foreground
    massive-magic snapshots refresh|list record a notebook's snapshots again, list them

``demo`` executes the notebook with a real Jupyter kernel (nbclient), in a
temporary working directory and with a temporary session cache unless
``MASSIVE_MAGIC_CACHE_DIR`` is set, and writes the executed copy. The exit code
is nonzero when a cell fails, so the demo doubles as a smoke test.

An expected failure (a :class:`~massive_magic.errors.MassiveError`) is one line on
stderr, ``massive-magic: <what happened>. <what to do>``, worded for a shell
(:data:`CLI_WORDS`), and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from . import cli_snapshots
from .errors import MassiveError, Step, render
from .settings import ENV_API_KEY, ENV_CACHE_DIR, ENV_EMAIL, ENV_PASSWORD

__all__ = ["CLI_WORDS", "NOTEBOOKS", "NotebookRun", "error_line", "main", "run_notebook"]

#: What to do next, in a shell's words: environment variables and command options.
CLI_WORDS: Mapping[Step, str] = {
    Step.LIST_CARDS: "Check the card id in its Metabase URL (/question/<id>-...).",
    Step.SHOW_PARAMETERS: "The card's page in Metabase shows its parameters (card {ref}).",
    Step.GIVE_PARAMETER: "Give {names} a value.",
    Step.REFRESH: "Run it again with --refresh.",
    Step.READ_DASHBOARD: "Read the whole dashboard ({ref}) instead.",
    Step.READ_CARD: "Read it as a card ({ref}).",
    Step.LOGIN: f"Log in anew: set {ENV_PASSWORD} and run the command again.",
    Step.SET_USER: f"Set {{names}} (e.g. export {ENV_EMAIL}=you@partner.com).",
    Step.SET_PASSWORD: "Set {names} in the environment.",
    Step.USE_API_KEY: f"Or set {ENV_API_KEY} to use an API key.",
    Step.RAISE_TIMEOUT: "Raise it with --timeout SECONDS.",
    Step.WAIT_THEN_LOGIN: "Then run the command once; every attempt extends the lock.",
    Step.USE_HTTPS: "Use an https:// URL, or pass --allow-http if you must.",
    Step.SET_API_KEY: "Set a current API key in {names}.",
    Step.SET_CACHE_DIR: "Set {names} to a directory only you can write.",
    Step.CONNECT_SERVER: "Set MASSIVE_METABASE_URL={names} to read from that server.",
    Step.INSTALL_EXTRA: "Install it with pip install 'massive-magic[{names}]'.",
    Step.RECORD_SNAPSHOT: "Record it while online: massive-magic snapshots refresh NOTEBOOK.",
    Step.ALLOW_OLDER: "Or allow older ones with MASSIVE_MAGIC_SNAPSHOT_MAX_AGE (e.g. 30d).",
    Step.LEAVE_REPLAY: "Set MASSIVE_MAGIC_SNAPSHOT_MODE=auto (or off) to read from Metabase.",
    Step.SET_SNAPSHOT_DIR: "Set {names} (or pass --dir DIR).",
}


def error_line(exc: BaseException) -> str:
    """``massive-magic: <message> <next steps>`` — one line for stderr."""
    text = " ".join(render(exc, CLI_WORDS).split())
    return f"massive-magic: {text}"


#: The notebooks ship in the repository, next to the package.
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
QUICKSTART = "quickstart.ipynb"


@dataclass(frozen=True)
class NotebookRun:
    """What happened when a notebook ran: written path, cells run, the failure if any."""

    output: Path
    code_cells: int
    executed: int
    seconds: float
    error: str | None = None  # "cell 7: QueryFailed: ..." for the first failing cell

    @property
    def ok(self) -> bool:
        return self.error is None


def run_notebook(
    source: Path,
    output: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    history_file: Path | None = None,
    timeout: int = 600,
) -> NotebookRun:
    """Execute ``source`` with the ``python3`` kernel and write the executed copy to ``output``.

    ``env`` is the kernel's whole environment (default: this process's);
    ``history_file`` keeps the kernel's IPython history there (default: in memory).
    The copy is written even when a cell fails, with the error in its outputs.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd or source.parent)}},
        ipython_hist_file=str(history_file) if history_file else ":memory:",
    )
    error = None
    started = time.perf_counter()
    try:
        client.execute(env=dict(os.environ if env is None else env))
    except CellExecutionError as exc:
        error = _failure(nb, exc)
    seconds = time.perf_counter() - started
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)
    code = [c for c in nb.cells if c.cell_type == "code"]
    executed = sum(1 for c in code if c.get("execution_count"))
    return NotebookRun(output, len(code), executed, seconds, error)


def _failure(nb: Any, exc: Any) -> str:
    """``cell N: Name: value`` for the cell that stopped the run.

    Execution stops at the failing cell, so it is the last one with a count. A
    ``UsageError`` leaves no ``error`` output (IPython prints it on stderr), hence
    the name and value come from the exception nbclient raised.
    """
    ran = [i for i, c in enumerate(nb.cells, start=1) if c.get("execution_count")]
    where = f"cell {ran[-1]}" if ran else "start"
    evalue = str(getattr(exc, "evalue", "") or "").strip()
    return f"{where}: {getattr(exc, 'ename', type(exc).__name__)}: {evalue}".rstrip(": ")


def demo(output: Path, notebook: Path | None = None) -> int:
    """Run the quickstart against the sandbox; 0 when every cell succeeded."""
    source = notebook or NOTEBOOKS / QUICKSTART
    if not source.is_file():
        print(
            f"massive-magic demo: {source} not found. The demo notebook ships with the "
            "source repository; run this from a clone (pip install -e .).",
            file=sys.stderr,
        )
        return 2
    missing = _missing_notebook_tools()
    if missing:
        print(
            f"massive-magic demo needs {missing} to run the notebook: "
            "pip install 'massive-magic[notebook]'",
            file=sys.stderr,
        )
        return 2
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="massive-magic-demo-") as tmp:
        env.setdefault(ENV_CACHE_DIR, str(Path(tmp) / "cache"))
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        print(f"Running {source.name} with a python3 kernel against the sandbox ...", flush=True)
        run = run_notebook(source, output.resolve(), cwd=workdir, env=env)
    print(f"Wrote {run.output}")
    print(f"{run.executed} of {run.code_cells} code cells ran in {run.seconds:.1f} s.")
    if run.error:
        print(f"Failed at {run.error}", file=sys.stderr)
        return 1
    return 0


def _missing_notebook_tools() -> str | None:
    """The first of the ``notebook`` extra's packages that cannot be imported, if any."""
    for name in ("nbformat", "nbclient", "ipykernel", "matplotlib"):
        try:
            import_module(name)
        except ModuleNotFoundError:
            return name
    return None


def sandbox(port: int) -> int:
    """Serve the sandbox in the foreground (the sandbox's own entry point)."""
    from .sandbox.__main__ import main as sandbox_main

    return sandbox_main(["--port", str(port)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="massive-magic", description="Massive's Metabase cards as pandas DataFrames."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_demo = commands.add_parser(
        "demo", help="run the quickstart notebook against the sandbox and write the result"
    )
    run_demo.add_argument(
        "--output",
        type=Path,
        default=Path("quickstart.executed.ipynb"),
        metavar="PATH",
        help="where to write the executed notebook (default: %(default)s)",
    )
    serve = commands.add_parser("sandbox", help="serve the demo Metabase in the foreground")
    serve.add_argument("--port", type=int, default=3000, help="port (default: %(default)s)")
    cli_snapshots.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point: ``massive-magic``."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return demo(args.output)
        if args.command == "snapshots":
            return cli_snapshots.run(args)
        return sandbox(args.port)
    except MassiveError as exc:
        print(error_line(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
