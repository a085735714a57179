"""``massive-magic snapshots``: record a notebook's snapshots again, or list a directory's.

    massive-magic snapshots refresh NOTEBOOK.ipynb [--dir DIR] [--output PATH]
    massive-magic snapshots list [DIR]

``refresh`` executes the notebook with a real kernel (``cli.run_notebook``) with
``MASSIVE_MAGIC_SNAPSHOT_MODE=record`` in its environment, so every card it reads
is read live and recorded: a nightly job keeps a shared notebook's snapshots fresh.
The kernel runs in the notebook's directory (a relative snapshot directory is the
one beside it) with this process's environment, credentials included; ``--dir``
names the directory for a notebook that names none (``MASSIVE_MAGIC_SNAPSHOTS``).
Exit code 1 when a cell fails.

``list`` prints one line per snapshot (card, parameters, rows, age, size) and the
damaged files, if any (exit code 1 then).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import ConfigError, NextStep, Step
from .settings import ENV_SNAPSHOT_MODE, ENV_SNAPSHOTS, resolve_snapshots
from .snapshot_keys import describe_age, describe_parameters
from .snapshots import SnapshotInfo, SnapshotStore

__all__ = ["list_snapshots", "refresh", "register", "run"]


def register(commands: Any) -> None:
    """Add ``snapshots refresh|list`` to the ``massive-magic`` subcommands."""
    parser = commands.add_parser(
        "snapshots", help="record a notebook's snapshots again, or list a snapshot directory"
    )
    actions = parser.add_subparsers(dest="snapshots_action", required=True, metavar="ACTION")
    again = actions.add_parser(
        "refresh", help="execute a notebook in record mode: its card reads are recorded anew"
    )
    again.add_argument("notebook", type=Path, metavar="NOTEBOOK.ipynb")
    again.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help=f"snapshot directory for a notebook that names none (default: ${ENV_SNAPSHOTS})",
    )
    again.add_argument(
        "--output", type=Path, metavar="PATH", help="keep the executed notebook there"
    )
    again.add_argument(
        "--timeout", type=int, default=600, help="seconds per cell (default: %(default)s)"
    )
    listed = actions.add_parser("list", help="what a snapshot directory holds")
    listed.add_argument(
        "dir", nargs="?", type=Path, metavar="DIR", help=f"default: ${ENV_SNAPSHOTS}"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The exit code of ``massive-magic snapshots ...``."""
    if args.snapshots_action == "refresh":
        return refresh(args.notebook, args.dir, output=args.output, timeout=args.timeout)
    return list_snapshots(args.dir)


def refresh(
    notebook: Path, directory: Path | None, *, output: Path | None = None, timeout: int = 600
) -> int:
    """Execute ``notebook`` in record mode; 0 when every cell ran."""
    from .cli import run_notebook

    if not notebook.is_file():
        print(f"massive-magic snapshots refresh: {notebook} not found.", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env[ENV_SNAPSHOT_MODE] = "record"
    if directory is not None:
        env[ENV_SNAPSHOTS] = str(directory.resolve())
    where = resolve_snapshots(environ=env)[0]
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    print(f"Recording {notebook.name}: every card it reads is read live ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="massive-magic-refresh-") as tmp:
        target = output.resolve() if output else Path(tmp) / notebook.name
        try:
            ran = run_notebook(notebook.resolve(), target, env=env, timeout=timeout)
        except ModuleNotFoundError as exc:
            print(
                f"massive-magic snapshots refresh needs {exc.name} to run the notebook: "
                "pip install 'massive-magic[notebook]'",
                file=sys.stderr,
            )
            return 2
    print(f"{ran.executed} of {ran.code_cells} code cells ran in {ran.seconds:.1f} s.")
    if output is not None:
        print(f"Wrote {ran.output}")
    if where is not None:
        infos = SnapshotStore(where).list()
        fresh = sum(1 for i in infos if i.recorded_at >= started)
        print(f"{fresh} of the {len(infos)} snapshots in {where} were recorded by this run.")
    if ran.error:
        print(f"Failed at {ran.error}", file=sys.stderr)
        return 1
    return 0


def list_snapshots(directory: Path | None, *, now: dt.datetime | None = None) -> int:
    """Print what ``directory`` (default: ``$MASSIVE_MAGIC_SNAPSHOTS``) holds; 1 if damaged."""
    where = directory or resolve_snapshots()[0]
    if where is None:
        raise ConfigError(
            "No snapshot directory to list.",
            next_steps=(NextStep(Step.SET_SNAPSHOT_DIR, names=(ENV_SNAPSHOTS,)),),
        )
    store = SnapshotStore(where, clock=(lambda: now) if now else None)
    infos = store.list()
    if not infos:
        print(f"No snapshots in {where}.")
    else:
        print(_table(infos))
        total = sum(i.size for i in infos)
        print(f"{len(infos)} snapshot{'s' if len(infos) != 1 else ''} in {where}, {_size(total)}.")
    problems = store.problems()
    for path, message in problems:
        print(f"damaged: {path.name}: {message}")
    return 1 if problems else 0


def _table(infos: list[SnapshotInfo]) -> str:
    servers = {i.url for i in infos}
    header = ["card", "name", "parameters", "limit", "rows", "recorded (UTC)", "age", "size"]
    if len(servers) > 1:
        header.append("server")
    rows = [header]
    for i in infos:
        card = str(i.card_id)
        if i.dashboard_id is not None:
            card += f" (dashboard {i.dashboard_id})"
        row = [
            card,
            _short(i.name or "", 32),
            _short(describe_parameters(i.parameters), 48),
            "" if i.limit is None else f"{i.limit:,}",
            f"{i.rows:,}",
            f"{i.recorded_at:%Y-%m-%d %H:%M}",
            " ".join(describe_age(i.age).split(" ")[:2]),
            _size(i.size),
        ]
        if len(servers) > 1:
            row.append(i.url)
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    right = {"limit", "rows", "size"}
    return "\n".join(
        "  ".join(
            cell.rjust(w) if header[c] in right else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
