"""Shared fixtures, and a test session that writes nothing outside temporary directories.

Isolation comes in three layers:

* ``pytest_configure`` points ``HOME``, the XDG and Jupyter directories, ``IPYTHONDIR`` and
  ``MPLCONFIGDIR`` at one temporary directory for the whole session, before any shell,
  kernel or JupyterLab exists, and puts them back at the end;
* ``_clean_environment`` (autouse) takes a developer's ``MASSIVE_METABASE_*`` and
  ``MASSIVE_MAGIC_*`` settings away from every test and points the session cache at the
  test's ``tmp_path``;
* an audit hook (:class:`WriteWatch`) records every file this process opens for writing,
  creates, renames or deletes under the real home, the repository (bytecode and tool
  caches aside) or the Python installation: the test that did it fails at
  teardown, and a write outside any test fails the session.

Servers, clients and shells: ``sandbox`` is one server per test module (``sandbox_server``),
reset before and after every test; ``srv`` is the same fixture under the short name most
files use. ``make_client(**overrides)`` builds logged-in ``Client`` objects on it, ``client``
is the default one. ``shell`` is the process-wide IPython ``InteractiveShell`` (IPython
allows one) with its history in memory; ``ip`` is that shell with the extension freshly
loaded, its namespace and configuration cleaned after the test.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from massive_magic import Client
from massive_magic.sandbox import Sandbox

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

#: captured at import, before ``pytest_configure`` moves ``HOME``
REAL_HOME = Path.home()
ROOT = Path(__file__).resolve().parents[1]
#: the prefixes of the settings a developer may have exported for the real server
SETTINGS_PREFIXES = ("MASSIVE_METABASE_", "MASSIVE_MAGIC_")


# -- the session's home: every per-user path inside one temporary directory ------------


def home_layout(base: Path) -> dict[str, str]:
    """The variables that decide where IPython, Jupyter, matplotlib and platformdirs write."""
    home = base / "home"
    paths = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_RUNTIME_DIR": base / "runtime",
        "IPYTHONDIR": base / "ipython",
        "JUPYTER_CONFIG_DIR": base / "jupyter" / "config",
        "JUPYTER_DATA_DIR": base / "jupyter" / "data",
        "JUPYTER_RUNTIME_DIR": base / "jupyter" / "runtime",
        "MPLCONFIGDIR": base / "matplotlib",
        "HYPOTHESIS_STORAGE_DIRECTORY": base / "hypothesis",
    }
    # platformdirs' layout, which jupyter_core adopts in its next major version (no warning)
    return {**{name: str(path) for name, path in paths.items()}, "JUPYTER_PLATFORM_DIRS": "1"}


class _SessionHome:
    """The temporary directory and the variables it replaced, for ``pytest_unconfigure``."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="massive-magic-tests-"))
        self.layout = home_layout(self.base)
        self.saved = {name: os.environ.get(name) for name in self.layout}

    def enter(self) -> None:
        os.environ.update(self.layout)
        # hypothesis read its variable when pytest loaded its plugin, before this ran
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(self.layout["HYPOTHESIS_STORAGE_DIRECTORY"])
        Path(self.layout["HOME"]).mkdir()
        Path(self.layout["XDG_RUNTIME_DIR"]).mkdir(mode=0o700)

    def leave(self) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.base, ignore_errors=True)


# -- the write watch ------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
#: audit events that change the file system: (index of a path changed, index of the
#: directory descriptor a relative path starts from) per path
_PATH_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.mkdir": ((0, 2),),
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)),
    "os.replace": ((0, 2), (1, 3)),
    "os.link": ((1, 3),),
    "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),),
    "os.chmod": ((0, 2),),
    "os.utime": ((0, 3),),
    "shutil.rmtree": ((0, 1),),
}
_EVENTS = frozenset({"open", "sqlite3.connect", *_PATH_EVENTS})
_CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
#: pytest writes its cache into a temporary ``pytest-cache-files-*`` and renames it.
_PYTEST_CACHE_TMP = "pytest-cache-files-"


def _normal(path: Any, dir_fd: Any = None) -> str | None:
    """An absolute path string; None for a file descriptor or an unknown starting point."""
    if isinstance(path, int):
        return None
    text = os.fsdecode(path)
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(text):
        try:  # shutil.rmtree and TemporaryDirectory remove relative to a directory's fd
            text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
        except OSError:
            return None
    return os.path.abspath(text)


def written_paths(event: str, args: tuple[Any, ...]) -> list[str]:
    """The paths an audit event writes to (none for a read)."""
    if event == "open":
        path, mode, flags = [*args, None, None][:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        found = _normal(path) if writes else None
        return [found] if found else []
    if event == "sqlite3.connect":
        database = os.fsdecode(args[0]) if args else ":memory:"
        if database.startswith("file:"):
            database, _, query = database[5:].partition("?")
            if "mode=ro" in query or "mode=memory" in query:
                return []
        if database in ("", ":memory:"):
            return []
        return [os.path.abspath(database)]
    found = [
        _normal(args[index], args[fd] if fd is not None and fd < len(args) else None)
        for index, fd in _PATH_EVENTS.get(event, ())
        if index < len(args)
    ]
    return [path for path in found if path is not None]


class WriteWatch:
    """What this process wrote under ``guarded`` roots outside the ``allowed`` ones.

    Fed by an audit hook (:func:`sys.addaudithook`), so it sees this process only: a
    kernel or JupyterLab started by a test is kept in place by the session's environment.
    """

    def __init__(self, guarded: Iterable[Path], allowed: Iterable[Path]) -> None:
        self.guarded = [str(p) for p in guarded]
        self.allowed = [str(p) for p in allowed]
        self.seen: list[str] = []
        self.active = False
        self._inside = threading.local()

    def forbidden(self, path: str) -> bool:
        def under(roots: list[str]) -> bool:
            return any(path == root or path.startswith(root + os.sep) for root in roots)

        parts = path.split(os.sep)
        if _CACHE_DIRS.intersection(parts) or any(p.startswith(_PYTEST_CACHE_TMP) for p in parts):
            return False  # tool caches, and pytest's own cache being written (then renamed)
        return under(self.guarded) and not under(self.allowed)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or event not in _EVENTS or getattr(self._inside, "busy", False):
            return
        self._inside.busy = True
        try:
            for path in written_paths(event, args):
                if event == "os.mkdir" and path in self.guarded:
                    continue  # pytest's exist_ok mkdir of its root dir: there already
                if self.forbidden(path):
                    self.seen.append(f"{event}: {path}")
        except Exception:  # an audit hook that raises breaks the operation it watches
            pass
        finally:
            self._inside.busy = False


def _watch_for(home: _SessionHome) -> WriteWatch:
    guarded = {ROOT, Path(sys.prefix)}
    if Path(REAL_HOME.anchor) != REAL_HOME:  # a home of "/" would guard the whole disk
        guarded.update({REAL_HOME, REAL_HOME.resolve()})
    allowed = {home.base, Path(os.devnull).parent}
    temp = Path(tempfile.gettempdir())
    if not ROOT.is_relative_to(temp):  # a clone under /tmp stays guarded
        allowed.add(temp)
    return WriteWatch(guarded, allowed)


_home: _SessionHome | None = None
_watch: WriteWatch | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _home, _watch
    _home = _SessionHome()
    _home.enter()
    _watch = _watch_for(_home)
    sys.addaudithook(_watch)  # hooks cannot be removed: ``active`` switches it off
    _watch.active = True


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _watch is not None and _watch.seen:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("Written outside temporary directories, outside any test:")
            for line in _watch.seen:
                reporter.write_line(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    global _home
    if _watch is not None:
        _watch.active = False
    if _home is not None:
        _home.leave()
        _home = None


@pytest.fixture(scope="session")
def session_home() -> Path:
    """The temporary directory that holds the session's HOME, IPython and Jupyter dirs."""
    assert _home is not None
    return _home.base


@pytest.fixture(scope="session")
def real_home() -> Path:
    """The home directory the session started with (now replaced by ``session_home``)."""
    return REAL_HOME


@pytest.fixture(scope="session")
def write_watch() -> WriteWatch:
    """The audit-hook record of writes outside temporary directories."""
    assert _watch is not None
    return _watch


@pytest.fixture(autouse=True)
def _writes_stay_in_temporary_directories(write_watch: WriteWatch) -> Iterator[None]:
    start = len(write_watch.seen)
    yield
    found = write_watch.seen[start:]
    if found:
        del write_watch.seen[start:]  # reported here, not again at the end of the session
        pytest.fail("written outside temporary directories:\n" + "\n".join(found), pytrace=False)


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer's Metabase settings; the session cache in this test's tmp_path."""
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MASSIVE_MAGIC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty token-cache directory for one test (also set in the environment)."""
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("MASSIVE_MAGIC_CACHE_DIR", str(path))
    return path


# -- the sandbox and clients --------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Sandbox]:
    """One sandbox per test module (use ``sandbox``/``srv`` in tests: they reset it)."""
    from massive_magic import sandbox as sandbox_module

    with sandbox_module.start(port=0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The running sandbox with faults, log, clock, throttles and extra cards/users reset."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def srv(sandbox: Sandbox) -> Sandbox:
    """``sandbox`` under the short name the tests use."""
    return sandbox


ClientFactory = Callable[..., Client]


@pytest.fixture
def make_client(sandbox: Sandbox, tmp_path: Path) -> Iterator[ClientFactory]:
    """``make_client(login=True, **overrides)``: a ``Client`` on the sandbox as the demo
    user, cached in ``tmp_path``, without a progress bar; logged in with the request log
    emptied afterwards unless ``login=False``. Every client made is closed after the test."""
    made: list[Client] = []

    def make(*, login: bool = True, **overrides: Any) -> Client:
        options: dict[str, Any] = {
            "url": sandbox.url,
            "username": sandbox.username,
            "password": sandbox.password,
            "cache_dir": tmp_path,
            "progress": False,
        }
        options.update(overrides)
        client = Client(**options)
        made.append(client)
        if login:
            client.login()
            sandbox.reset_log()
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> Client:
    """A logged-in ``Client`` on the sandbox; the login is not in the request log."""
    return make_client()


# -- the IPython shell ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def shell() -> Iterator[InteractiveShell]:
    """The process-wide shell, history in memory: magics find it through ``get_ipython()``."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    if InteractiveShell.initialized():  # a shell a test made and left: not one we configured
        InteractiveShell.clear_instance()
    made = InteractiveShell.instance(config=config)
    yield made
    made.history_manager.end_session()
    InteractiveShell.clear_instance()


@pytest.fixture
def ip(shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell with the extension freshly loaded; names the test defined and
    ``%config MassiveMagics`` settings are gone afterwards."""
    names = set(shell.user_ns)
    shell.config.pop("MassiveMagics", None)  # %config writes to shell.config
    shell.run_line_magic("load_ext", "massive_magic")
    yield shell
    shell.extension_manager.unload_extension("massive_magic")
    shell.config.pop("MassiveMagics", None)
    for name in set(shell.user_ns) - names:
        del shell.user_ns[name]


@pytest.fixture
def remote_sandbox() -> Iterator[Any]:
    """A second sandbox on 127.0.0.1, named so that its URL reads as another machine's.

    ``127.1`` is 127.0.0.1 to the resolver, but not an IP address by its text, which is
    all the client decides from: the request stays on loopback while the URL is "remote".
    """
    from massive_magic import sandbox as sandbox_module

    with sandbox_module.start(port=0) as server:
        server.remote_url = f"http://127.1:{server.port}"
        yield server


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[Any]:
    """A requests.Session logged in to the sandbox that authenticates with the header only
    (no cookies kept): for tests of the sandbox's HTTP itself."""
    import requests

    answer = requests.post(
        f"{sandbox.url}/api/session",
        json={"username": sandbox.username, "password": sandbox.password},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    with requests.Session() as session:
        session.headers["X-Metabase-Session"] = answer.json()["id"]
        yield session
