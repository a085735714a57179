"""No password or session token in the executed notebook, IPython's history or the cache.

The quickstart runs in a real kernel whose IPython directory, history database and
session cache all live under tmp_path. After the last cell, one extra cell (kept
out of the notebook) writes every session token the kernel's sandboxes saw in an
``X-Metabase-Session`` header to a file outside the searched directories. Then
every byte written is searched for the tokens, the demo password and API key. The
one exception is the session cache's own entry for the session still live at the
end (its purpose is to keep that token, in a 0600 file); a logged-out session's
token must be gone from it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from massive_magic.cli import NOTEBOOKS
from massive_magic.sandbox import demo
from massive_magic.settings import ENV_CACHE_DIR
from massive_magic.token_store import TokenStore

pytestmark = pytest.mark.slow

COLLECT_TOKENS = """
import json as _json, pathlib as _pathlib
_servers = [get_ipython().magics_manager.registry["MassiveMagics"].sandbox, server]
_tokens = sorted(
    {{value for s in _servers for r in s.log for key, value in r.headers.items()
      if key.lower() == "x-metabase-session"}}
)
_pathlib.Path({path!r}).write_text(_json.dumps(_tokens))
"""


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_no_secret_is_written_anywhere(tmp_path: Path) -> None:
    searched = tmp_path / "searched"
    ipython_dir, cache, work = searched / "ipython", searched / "cache", searched / "work"
    for folder in (ipython_dir, cache, work):
        folder.mkdir(parents=True)
    history = ipython_dir / "history.sqlite"
    tokens_file = tmp_path / "tokens.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASSIVE_")}
    env.update({ENV_CACHE_DIR: str(cache), "IPYTHONDIR": str(ipython_dir)})

    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
        ipython_hist_file=str(history),
    )
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        extra = nbformat.v4.new_code_cell(COLLECT_TOKENS.format(path=str(tokens_file)))
        nb.cells.append(extra)  # nbclient writes the executed cell back by index
        client.execute_cell(extra, len(nb.cells) - 1, store_history=False)
        nb.cells.pop()
    executed = searched / "quickstart.executed.ipynb"
    nbformat.write(nb, executed)

    tokens = set(json.loads(tokens_file.read_text()))
    assert len(tokens) >= 2  # the magics' session and the plain Client's session
    always = [demo.DEMO_PASSWORD, demo.DEMO_API_KEY]

    # The cache keeps exactly the session that is still live (the plain Client's;
    # the magics logged out), read back through the token store API, in 0600 files.
    # The logged-out token is gone from it.
    store = TokenStore(cache)
    cached = {
        entry.session_id
        for path in files_under(cache)
        for entry in [_entry_for(store, nb, path)]
        if entry is not None
    }
    assert len(cached) == 1 and cached < tokens
    for path in files_under(cache):
        assert path.stat().st_mode & 0o077 == 0, path.name

    # The history is real: it recorded the notebook's magics.
    with sqlite3.connect(f"file:{history}?mode=ro", uri=True) as db:
        sources = [row[0] for row in db.execute("SELECT source_raw FROM history")]
    assert any("%massive_login --sandbox" in s for s in sources)

    written = files_under(searched)
    assert executed in written and history in written
    for path in written:
        data = path.read_bytes()
        allowed = cached if path.is_relative_to(cache) else set()
        for secret in [*always, *(tokens - allowed)]:
            assert secret.encode() not in data, f"a secret is in {path.relative_to(tmp_path)}"


def _entry_for(store: TokenStore, nb: nbformat.NotebookNode, path: Path) -> object:
    """The cached entry behind ``path``, found by the (url, user) pairs the notebook shows."""
    for url in _urls_shown(nb):
        if store.path_for(url, demo.DEMO_USERNAME) == path:
            return store.load(url, demo.DEMO_USERNAME)
    return None


def _urls_shown(nb: nbformat.NotebookNode) -> set[str]:
    import re

    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    return set(re.findall(r"http://127\.0\.0\.1:\d+", text))
