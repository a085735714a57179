"""Imports point one way, and each third-party library has one home.

The layer order is the one in ``docs/design.md``; a module may import only
modules to its left. Checked statically with ``ast`` so that lazy imports inside
functions count too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "massive_magic"

#: module -> the package modules it may import
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "settings": {"errors", "snapshot_keys"},
    "refs": {"errors"},
    "token_store": {"errors", "settings"},
    "throttle": {"errors", "settings", "token_store"},
    "secret": set(),
    "answers": {"errors", "secret"},
    "auth": {"errors", "settings", "throttle", "answers", "secret"},
    "login": {"errors", "settings", "token_store", "throttle", "answers", "secret", "auth"},
    "gcpause": set(),
    "converters": {"errors"},
    "temporal": {"errors", "converters"},
    "typetable": {"errors", "converters", "temporal"},
    "builder": {"errors", "gcpause", "converters", "typetable"},
    "frames": {"errors", "converters", "typetable", "builder"},
    "padding": {"errors"},
    "exactjson": {"gcpause"},
    "rowstream": {"errors", "exactjson", "padding"},
    "declarations": {"errors"},
    "parameters": {"errors", "declarations"},
    "cellparams": {"errors"},
    "links": {"errors", "refs", "declarations", "parameters"},
    "completion": {"errors", "refs", "parameters", "links"},
    "card_view": {"errors", "refs", "parameters", "links", "frames"},
    "session": {
        "errors",
        "settings",
        "token_store",
        "throttle",
        "answers",
        "secret",
        "auth",
        "login",
    },
    "snapshot_keys": {"errors"},
    "snapshot_format": {"errors"},
    "snapshot_files": {"errors"},
    "snapshots": {"errors", "snapshot_keys", "snapshot_format", "snapshot_files"},
    "snapshot_meta": {"snapshot_keys", "snapshot_files"},
    "prefetch": set(),
    "progress": set(),
    "card_answers": {"errors"},
    "outputs": {"errors", "frames"},
    # card_requests: one card read's POSTs and bodies (deadline, hang-up), below the reader.
    "card_requests": {"errors", "session", "card_answers", "padding", "prefetch", "progress"},
    "metadata": {
        "errors",
        "frames",
        "session",
        "card_answers",
        "declarations",
        "parameters",
        "links",
        "card_view",
    },
    "reader": {
        "errors",
        "frames",
        "rowstream",
        "session",
        "card_answers",
        "card_requests",
        "metadata",
        "progress",
        "links",
        "outputs",
    },
    # card_memory: what a Client has learnt of cards (metadata's Dashcard, as a type only).
    "card_memory": {"metadata"},
    "client": {
        "errors",
        "settings",
        "refs",
        "frames",
        "parameters",
        "session",
        "card_answers",
        "metadata",
        "reader",
        "card_memory",
        "dashboards",
        "token_store",
        "outputs",
        "links",
        "snapshot_keys",
        "snapshot_reads",
    },
    # snapshot_reads: the client's reads through a snapshot directory (record/replay/auto).
    "snapshot_reads": {
        "errors",
        "settings",
        "card_answers",
        "metadata",
        "snapshot_keys",
        "snapshot_files",
        "snapshot_meta",
        "snapshots",
    },
    # dashboards: Client.dashboard's fan-out, live (reader) or through the snapshots.
    "dashboards": {
        "errors",
        "session",
        "card_answers",
        "metadata",
        "outputs",
        "progress",
        "reader",
        "snapshot_reads",
    },
    "magic_text": {"errors"},
    # IPython's completer API over completion.py; reads lists through metadata, lazily.
    "magic_completion": {"errors", "refs", "parameters", "completion", "client", "metadata"},
    # notebook_session: the notebook's client, sandbox and snapshot mode (no IPython).
    "notebook_session": {
        "errors",
        "settings",
        "client",
        "sandbox",
        "snapshots",
        "outputs",
        "magic_text",
    },
    "magics": {
        "errors",
        "cellparams",
        "client",
        "card_picker",
        "magic_text",
        "magic_completion",
        "notebook_session",
        "card_view",
    },
    # picker_inputs: the picker's inputs read ParameterDecl, the one reading of declarations.
    # magics: only lazily, inside picker(), to borrow the notebook's %massive_login
    # (only magics.py may call get_ipython()); magics imports card_picker lazily too.
    "picker_view": {"errors"},
    "picker_inputs": {"declarations", "picker_view"},
    # links and parameters: the picker shows the card's link with the filters it would send.
    "card_picker": {
        "errors",
        "refs",
        "client",
        "cellparams",
        "parameters",
        "links",
        "picker_inputs",
        "picker_view",
        "magics",
    },
    # cli_snapshots: `massive-magic snapshots`; cli only lazily (run_notebook), cli imports it.
    "cli_snapshots": {"errors", "settings", "snapshot_keys", "snapshots", "cli"},
    "export": {"errors", "converters", "frames"},
    "cli_base": {"errors", "settings", "client"},
    "cli_export": {
        "errors",
        "cellparams",
        "cli_base",
        "client",
        "metadata",
        "export",
        "frames",
        "magic_text",
    },
    "cli": {"errors", "settings", "sandbox", "client", "cli_base", "cli_export", "cli_snapshots"},
}

#: third-party top-level package -> the modules allowed to import it
HOMES: dict[str, set[str]] = {
    "requests": {"session", "answers"},
    "urllib3": {"session", "answers"},
    "IPython": {"magics", "magic_completion"},
    "ipywidgets": {"card_picker", "picker_inputs"},
    "nbclient": {"cli"},
    "polars": {"frames"},
    "tqdm": {"progress"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from . import x
                base = node.module or ""
                if base:
                    found.add("massive_magic." + base)
                else:
                    found.update("massive_magic." + alias.name for alias in node.names)
            elif node.module:
                found.add(node.module)
    return found


def _package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("path", _package_modules(), ids=lambda p: p.stem)
def test_module_imports_only_to_its_left(path: Path) -> None:
    assert path.stem in ALLOWED, f"{path.stem}.py is not placed in a layer; add it to ALLOWED"
    internal = {name.split(".")[1] for name in _imports(path) if name.startswith("massive_magic.")}
    assert internal <= ALLOWED[path.stem], f"{path.stem} imports {internal - ALLOWED[path.stem]}"


@pytest.mark.parametrize("path", _package_modules(), ids=lambda p: p.stem)
def test_third_party_libraries_have_one_home(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top in HOMES:
            assert path.stem in HOMES[top], f"{path.stem} imports {top}, whose home is {HOMES[top]}"


@pytest.mark.parametrize(
    "module",
    [
        "gcpause",
        "padding",
        "exactjson",
        "rowstream",
        "converters",
        "temporal",
        "typetable",
        "builder",
        "frames",
    ],
)
def test_conversion_is_free_of_http_and_ipython(module: str) -> None:
    tops = {name.split(".")[0] for name in _imports(PACKAGE / f"{module}.py")}
    assert not tops & {"requests", "urllib3", "IPython", "ipywidgets"}


def test_client_never_imports_the_sandbox() -> None:
    for path in _package_modules():
        if path.stem in {"notebook_session", "cli"}:
            continue
        assert not any(n.startswith("massive_magic.sandbox") for n in _imports(path)), path.stem


def test_only_magics_calls_get_ipython() -> None:
    for path in [*_package_modules(), PACKAGE / "__init__.py"]:
        if path.stem != "magics":
            assert "get_ipython(" not in path.read_text(encoding="utf-8"), path.stem


def test_importing_the_package_is_light() -> None:
    """`import massive_magic` must not pull in the HTTP stack, pandas or widgets."""
    code = (
        "import sys, massive_magic\n"
        "heavy = [m for m in ('requests', 'pandas', 'pyarrow', 'ipywidgets', 'tqdm', 'IPython')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
