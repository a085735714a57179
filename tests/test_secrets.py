"""No password or session token in the executed notebook, IPython's history or the cache.

The quickstart runs in a real kernel whose IPython directory, history database and
session cache all live under tmp_path. After the last cell, one extra cell (kept
out of the notebook) writes down what the kernel's sandboxes really received: the
password of every account that logged in, every ``X-Metabase-Session`` token and every
``X-API-Key``. Then every byte written is searched for exactly those secrets. The one
exception is the session cache's own entry for the session still live at the end (its
purpose is to keep that token, in a 0600 file); a logged-out session's token must be
gone from it.

The search itself is checked: a secret planted in the history database, in a plain file
and in the cache is found (a scanner that finds nothing proves nothing).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from massive_magic.cli import NOTEBOOKS
from massive_magic.sandbox import demo
from massive_magic.settings import ENV_CACHE_DIR
from massive_magic.token_store import TokenEntry, TokenStore

COLLECT_SECRETS = """
import json as _json, pathlib as _pathlib
_servers = [get_ipython().magics_manager.registry["MassiveMagics"].sandbox, server]
_requests = [r for s in _servers for r in s.log]
# The sandbox keeps no login body; a 200 on POST /api/session proves the account's
# password was sent, and only that password opens the account.
_logged_in = [
    s for s in _servers
    if any(r.method == "POST" and r.path == "/api/session" and r.status == 200 for r in s.log)
]
_secrets = {{
    "passwords": sorted({{s.accounts.users[s.username.lower()].password for s in _logged_in}}),
    "tokens": sorted({{r.header("X-Metabase-Session") for r in _requests}} - {{None}}),
    "api_keys": sorted({{r.header("X-API-Key") for r in _requests}} - {{None}}),
}}
_pathlib.Path({path!r}).write_text(_json.dumps({{"servers": len(_logged_in), "secrets": _secrets}}))
"""

#: which secrets a file may hold (by label), given its path
Allowed = Callable[[Path], set[str]]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def leaks(root: Path, secrets: Mapping[str, str], allowed: Allowed = lambda _: set()) -> list[str]:
    """``"file: label"`` for every secret found in the bytes of a file under ``root``.

    Secrets are named by label so that a failure never prints one."""
    return [
        f"{path.relative_to(root)}: {label}"
        for path in files_under(root)
        for data in [path.read_bytes()]
        for label, secret in secrets.items()
        if label not in allowed(path) and secret.encode() in data
    ]


def labelled(sent: Mapping[str, list[str]]) -> dict[str, str]:
    """``{"password 1": ..., "token 2": ...}`` from what the sandboxes received."""
    return {
        f"{kind.rstrip('s').replace('_', ' ')} {n}": value
        for kind, values in sent.items()
        for n, value in enumerate(values, 1)
    }


@pytest.mark.slow
def test_no_secret_is_written_anywhere(tmp_path: Path) -> None:
    searched = tmp_path / "searched"
    ipython_dir, cache, work = searched / "ipython", searched / "cache", searched / "work"
    for folder in (ipython_dir, cache, work):
        folder.mkdir(parents=True)
    history = ipython_dir / "history.sqlite"
    sent_file = tmp_path / "sent.json"
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
        extra = nbformat.v4.new_code_cell(COLLECT_SECRETS.format(path=str(sent_file)))
        nb.cells.append(extra)  # nbclient writes the executed cell back by index
        client.execute_cell(extra, len(nb.cells) - 1, store_history=False)
        assert not [o for o in extra.outputs if o.output_type == "error"], extra.outputs
        nb.cells.pop()
    executed = searched / "quickstart.executed.ipynb"
    nbformat.write(nb, executed)

    collected = json.loads(sent_file.read_text())
    sent = collected["secrets"]
    # What the quickstart really uses: the demo password, for both logins (the magics'
    # sandbox and the plain Client's), and their two session tokens. No API key.
    assert collected["servers"] == 2
    assert sent["passwords"] == [demo.DEMO_PASSWORD]
    assert len(sent["tokens"]) >= 2
    assert sent["api_keys"] == []
    secrets = labelled(sent)
    tokens = {label for label in secrets if label.startswith("token ")}

    # The cache keeps exactly the session that is still live (the plain Client's;
    # the magics logged out), read back through the token store API, in 0600 files.
    # The logged-out token is gone from it.
    store = TokenStore(cache)
    cached = {
        label
        for path in files_under(cache)
        for entry in [_entry_for(store, nb, path)]
        if entry is not None
        for label in tokens
        if secrets[label] == entry.session_id
    }
    assert len(cached) == 1
    for path in files_under(cache):
        assert path.stat().st_mode & 0o077 == 0, path.name

    # The history is real: it recorded the notebook's magics.
    with sqlite3.connect(f"file:{history}?mode=ro", uri=True) as db:
        sources = [row[0] for row in db.execute("SELECT source_raw FROM history")]
    assert any("%massive_login --sandbox" in s for s in sources)

    def allowed(path: Path) -> set[str]:
        return cached if path.is_relative_to(cache) else set()

    written = files_under(searched)
    assert executed in written and history in written
    assert leaks(searched, secrets, allowed) == []

    # The search finds a secret where one would land: planted, each one is reported.
    _plant_in_history(history, "%massive_login --password " + demo.DEMO_PASSWORD)
    (work / "notes.txt").write_text(" ".join(secrets[t] for t in sorted(tokens)))
    found = leaks(searched, secrets, allowed)
    assert [f for f in found if f.startswith("ipython")] == ["ipython/history.sqlite: password 1"]
    assert sorted(f for f in found if f.startswith("work")) == [
        f"work/notes.txt: {label}" for label in sorted(tokens)
    ]


def _plant_in_history(history: Path, source: str) -> None:
    """One more input line in IPython's history database, as IPython stores it."""
    with sqlite3.connect(history) as db:
        session = db.execute("SELECT max(session) FROM history").fetchone()[0]
        line = db.execute("SELECT max(line) FROM history").fetchone()[0] + 1
        db.execute("INSERT INTO history VALUES (?, ?, ?, ?)", (session, line, source, source))
    db.close()


def test_the_search_finds_a_planted_secret_and_spares_an_allowed_one(tmp_path: Path) -> None:
    secrets = {"password 1": demo.DEMO_PASSWORD, "token 1": "4f1c-token-a", "token 2": "9b2e-b"}
    (tmp_path / "ipython").mkdir()
    history = tmp_path / "ipython" / "history.sqlite"
    with sqlite3.connect(history) as db:
        db.execute("CREATE TABLE history (session, line, source, source_raw)")
        db.execute("INSERT INTO history VALUES (1, 1, 'x = 1', 'x = 1')")
    db.close()
    assert leaks(tmp_path, secrets) == []
    _plant_in_history(history, f"pw = {demo.DEMO_PASSWORD!r}")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "entry.json").write_text(json.dumps({"id": "4f1c-token-a"}))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("9b2e-b")])
    nbformat.write(nb, tmp_path / "executed.ipynb")

    def allowed(path: Path) -> set[str]:
        return {"token 1"} if path.parent.name == "cache" else set()

    assert sorted(leaks(tmp_path, secrets, allowed)) == [
        "executed.ipynb: token 2",
        "ipython/history.sqlite: password 1",
    ]
    assert "cache/entry.json: token 1" in leaks(tmp_path, secrets)


def _entry_for(store: TokenStore, nb: nbformat.NotebookNode, path: Path) -> TokenEntry | None:
    """The cached entry behind ``path``, found by the (url, user) pairs the notebook shows."""
    for url in _urls_shown(nb):
        if store.path_for(url, demo.DEMO_USERNAME) == path:
            return store.load(url, demo.DEMO_USERNAME)
    return None


def _urls_shown(nb: nbformat.NotebookNode) -> set[str]:
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    return set(re.findall(r"http://127\.0\.0\.1:\d+", text))
