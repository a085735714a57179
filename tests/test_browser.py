"""The card picker in a real JupyterLab, driven by Debian's headless Chromium.

The test starts ``jupyter lab`` on 127.0.0.1 (free port, a token, temp root,
config, data, IPython and cache directories), opens ``tests/browser/picker.ipynb``
(``%load_ext massive_magic``, ``%massive_login --sandbox``, ``%massive_cards``),
runs it and uses the picker as a person would: search, select, Load. It checks
a failing card (one short line, no traceback), a long load (the progress bar, then
the table), a filtered card (two countries picked in the list; the pandas table
shows only them), and "Copy as code": the ``%%massive_card`` cell arrives as a new
cell after the next executed cell, and running it gives the same 310 rows. The
screenshot goes to the test's temporary directory (its path is printed; pytest keeps
the last three runs' under ``/tmp/pytest-of-$USER/``).

The long load does not race a transient state: a cell the test adds to its copy of the
notebook makes the kernel's sandbox hold that answer for ``HOLD`` seconds, longer than
the second after which the client shows its progress bar; the bar then stays (complete)
under the table, so the test checks it after the load too.

Skipped only when ``/usr/bin/chromium`` is missing *and* ``CI`` is unset: in CI
a missing browser is a failure. Never runs ``playwright install``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from massive_magic.sandbox import demo

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = Path(__file__).resolve().parent / "browser" / "picker.ipynb"
#: rows for the long load (SEQUENCE card): HOLD, not the size, makes it long
BIG = 100_000
#: seconds the sandbox holds the long load's answer: the client's bar appears after 1 s
HOLD = 3.0
#: added to the notebook's copy after the login cell (the sandbox lives in the kernel)
HOLD_CELL = f"""\
# added by tests/test_browser.py: the long load's answer waits {HOLD} s, so its progress shows
_sandbox = get_ipython().magics_manager.registry["MassiveMagics"].sandbox
_sandbox.faults.delay_next(seconds={HOLD}, path="/api/card/{demo.SEQUENCE}/query*")
"""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's chromium: apt-get install -y chromium (required when CI is set)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _copy_notebook(target: Path) -> None:
    """The picker notebook with ``HOLD_CELL`` after its ``%massive_login`` cell."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    (login,) = [i for i, c in enumerate(nb.cells) if c.source.startswith("%massive_login")]
    nb.cells.insert(login + 1, nbformat.v4.new_code_cell(HOLD_CELL))
    nbformat.write(nb, target)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A private JupyterLab serving a copy of the picker notebook: yields (base URL, token)."""
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    _copy_notebook(root / "picker.ipynb")
    config = home / "jupyter-config"
    settings = home / "lab-settings"
    _write_json(
        config / "jupyter_server_config.json",
        {
            "LabApp": {
                "expose_app_in_browser": True,
                "news_url": None,
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                "extension_manager": "readonly",  # never asks pypi.org
            }
        },
    )
    # No "fetch news?" toast over the screenshot.
    _write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASSIVE_METABASE_")}
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(home / "ipython"),
        MASSIVE_MAGIC_CACHE_DIR=str(home / "massive-cache"),
        PYTHONUNBUFFERED="1",
    )
    port, token = _free_port(), secrets.token_hex(16)
    log_path = tmp_path / "jupyter.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--allow-root",  # CI containers run as root
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_picker_loads_a_card_in_jupyterlab(jupyter_lab: tuple[str, str], tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "CI is set but /usr/bin/chromium is missing: apt-get install chromium"
    from playwright.sync_api import expect, sync_playwright

    base, token = jupyter_lab
    shot = tmp_path / "picker.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=20_000)  # a busy CI machine; failures still end the test
            page.goto(f"{base}/lab/tree/picker.ipynb?token={token}")
            try:
                page.wait_for_function(
                    "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                    " && window.jupyterapp.shell.currentWidget.sessionContext"
                    " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                    " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                )
                page.evaluate(
                    "async () => {"
                    " const nb = window.jupyterapp.shell.currentWidget;"
                    " await nb.sessionContext.ready;"
                    " await window.jupyterapp.commands.execute('notebook:run-all-cells');"
                    "}"
                )
                picker = page.locator(".massive-picker")
                expect(picker).to_be_visible()

                search = picker.locator(".massive-picker-search input")
                results = picker.locator(".massive-picker-results select")
                output = picker.locator(".massive-picker-output")
                load = picker.locator("button.massive-picker-load")
                code = picker.locator(".massive-picker-code textarea")

                def choose(text: str, label: str) -> None:
                    """Type into the search box; select the one match once the list shows it."""
                    search.fill(text)
                    option = results.locator("option")
                    expect(option).to_have_count(1)
                    expect(option).to_have_text(re.compile(label))
                    results.select_option(index=0)
                    expect(picker.locator(".massive-picker-description")).to_contain_text(
                        re.compile(label)
                    )

                # a failing card: one short line in the output area, no traceback
                choose("payout", r"Payout\sreconciliation")
                load.click()
                expect(output.locator(".massive-picker-error")).to_contain_text("partner_payoutz")
                assert "Traceback" not in output.inner_text()

                # a long load (held HOLD s by the sandbox): the client's progress bar shows,
                # the table arrives, and the bar stays, complete
                choose("sequence", r"Sequence")
                rows_box = picker.locator(".massive-param--rows input")
                rows_box.fill(str(BIG))
                rows_box.press("Enter")
                expect(code).to_have_value(re.compile(rf"\nrows = {BIG}\n$"))
                load.click()
                progress = picker.locator(".massive-picker-progress .widget-hprogress")
                expect(progress).to_be_visible(timeout=30_000)
                expect(output.locator("table.dataframe")).to_be_visible(timeout=60_000)
                expect(progress).to_be_visible()
                expect(picker.locator(".massive-picker-status")).to_contain_text(
                    f"Loaded first 10 of {BIG:,} rows"
                )

                choose("filtered", r"\(filtered\)")
                expect(picker.locator(".massive-param")).to_have_count(4)
                expect(code).to_have_value(
                    '%%massive_card 497 -o df\ndate = "2024-01-01~2024-01-31"\n'
                )
                # a listed parameter: pick two countries; the code follows
                picker.locator(".massive-param--country select").select_option(label=["DE", "US"])
                expect(code).to_have_value(re.compile(r'\ncountry = \["DE", "US"\]\n$'))

                load.click()
                table = output.locator("table.dataframe")
                expect(table).to_be_visible(timeout=30_000)
                header = table.locator("thead").inner_text()
                for column in ("day", "app", "country", "earnings_usd"):
                    assert column in header
                rows = table.locator("tbody tr")
                expect(rows).to_have_count(10)
                countries = {rows.nth(i).locator("td").nth(3).inner_text() for i in range(10)}
                assert countries == {"DE", "US"}
                expect(picker.locator(".massive-picker-status")).to_contain_text(
                    "Loaded first 10 of 310 rows"
                )

                picker.locator("button.massive-picker-copy").click()
                expect(picker.locator(".massive-picker-status")).to_contain_text("Code below")
                # set_next_input from a click travels with the reply to the next executed
                # cell: run one, and the %%massive_card cell appears below it.
                page.evaluate(
                    "async () => {"
                    " const app = window.jupyterapp;"
                    " const nb = app.shell.currentWidget.content;"
                    " nb.activeCellIndex = nb.widgets.length - 1;"
                    " await app.commands.execute('notebook:insert-cell-below');"
                    " nb.activeCell.model.sharedModel.setSource('1 + 1');"
                    " await app.commands.execute('notebook:run-cell');"
                    "}"
                )
                page.wait_for_function(
                    "() => window.jupyterapp.shell.currentWidget.content.widgets"
                    ".some(c => c.model.sharedModel.getSource()"
                    ".startsWith('%%massive_card 497 -o df'))"
                )
                # ... and that cell reproduces the frame without the widget
                page.evaluate(
                    "async () => {"
                    " const app = window.jupyterapp;"
                    " const nb = app.shell.currentWidget.content;"
                    " nb.activeCellIndex = nb.widgets.findIndex(c =>"
                    "   c.model.sharedModel.getSource().startsWith('%%massive_card 497'));"
                    " await app.commands.execute('notebook:run-cell');"
                    "}"
                )
                expect(page.locator(".jp-OutputArea-output").last).to_contain_text(
                    "df: 310 rows x 6 columns"
                )
                # frame the picker for the screenshot
                page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
                picker.evaluate("el => el.scrollIntoView({block: 'start'})")
            finally:
                page.screenshot(path=str(shot))
                print(f"\nscreenshot: {shot}")
        finally:
            browser.close()
