"""The ``massive-magic`` command.

    massive-magic export REF [-p NAME=VALUE]... [-o PATH]   a card to a file (cli_export)
    massive-magic cards | login | logout                    (cli_export)
    massive-magic demo [--output PATH]   run notebooks/quickstart.ipynb against the sandbox
    massive-magic sandbox [--port N]     serve the demo Metabase in the foreground
    massive-magic snapshots refresh|list record a notebook's snapshots again, list them

The parser is assembled from subcommand modules, each with a ``register(commands)``
(:data:`SUBCOMMANDS`); a new group of subcommands is a new module and one line there.

``demo`` executes the notebook with a real Jupyter kernel (nbclient), in a
temporary working directory and with a temporary session cache unless
``MASSIVE_MAGIC_CACHE_DIR`` is set, and writes the executed copy. The exit code
is nonzero when a cell fails, so the demo doubles as a smoke test.

An expected failure (a :class:`~massive_magic.errors.MassiveError`) is one line on
stderr, ``massive-magic: <what happened>. <what to do>``, worded for a shell
(:data:`CLI_WORDS`), and a documented exit code (:mod:`~massive_magic.cli_base`).
A :class:`~massive_magic.errors.MassiveWarning` is one line too; a result at the
export cap is an error (exit 5). Ctrl-C is one line and exit 130.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, TextIO

from . import cli_export, cli_snapshots
from .cli_base import (
    CLI_WORDS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    Parser,
    error_line,
    exit_code,
)
from .errors import IncompleteResultWarning, MassiveError, MassiveWarning
from .settings import ENV_CACHE_DIR

__all__ = [
    "CLI_WORDS",
    "NOTEBOOKS",
    "SUBCOMMANDS",
    "NotebookRun",
    "error_line",
    "exit_code",
    "main",
    "run_notebook",
]


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


def _port(text: str) -> int:
    """``--port``: the sandbox's own check, imported only when the option is given."""
    from .sandbox.__main__ import port_number

    return port_number(text)


def _register_demo(commands: Any) -> None:
    """``demo`` and ``sandbox``: the embedded server and the quickstart notebook."""
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
    run_demo.set_defaults(run=lambda args: demo(args.output))
    serve = commands.add_parser("sandbox", help="serve the demo Metabase in the foreground")
    serve.add_argument(
        "--port", type=_port, default=3000, metavar="N", help="port (default: %(default)s)"
    )
    serve.set_defaults(run=lambda args: sandbox(args.port))


#: Each group of subcommands registers its parsers (``register(commands)``), in help order.
SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    cli_export.register,
    cli_snapshots.register,
    _register_demo,
)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="massive-magic",
        description="Massive's Metabase cards as pandas DataFrames, Arrow tables and files.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(commands)
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A MassiveWarning is one line on stderr; other warnings keep Python's format."""
    if issubclass(category, MassiveWarning):
        text = " ".join(str(message).split())
        print(f"massive-magic: warning: {text}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point: ``massive-magic``; returns the exit code."""
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default", MassiveWarning)
        warnings.simplefilter("error", IncompleteResultWarning)  # a script cannot see warnings
        warnings.showwarning = _show_warning
        try:
            return int(args.run(args))
        except (MassiveError, IncompleteResultWarning) as exc:
            print(error_line(exc), file=sys.stderr)
            return exit_code(exc)
        except KeyboardInterrupt:
            print("massive-magic: interrupted; nothing was written.", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # `massive-magic export 484 | head`: the reader left
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes
            return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
