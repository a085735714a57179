"""The session cache: private files, atomic writes, cross-process locks, corrupt-file tolerance."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

from massive_magic.errors import CacheWarning, ConfigError
from massive_magic.token_store import SCHEMA_VERSION, TokenEntry, TokenStore, directory_problem

URL = "https://metabase.example.com"
USER = "ana@partner.example"
TOKEN = "3f0b2c1e-8d4a-4b6f-9e21-7c5a0d9e1f42"
DAY = 24 * 3600.0
MAX_AGE = 14 * DAY


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "cache" / "massive-magic")


# -- pure bookkeeping ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "fresh"),
    [
        (0.0, True),
        (13 * DAY, True),
        (MAX_AGE - 61, True),
        (MAX_AGE - 60, False),  # renewed a minute early, not with a wasted 401
        (MAX_AGE, False),
        (MAX_AGE + 1, False),
        (-30.0, True),  # small clock skew between login and now
        (-DAY, False),  # created "tomorrow": the clock jumped, do not trust it
    ],
)
def test_is_fresh(age: float, fresh: bool) -> None:
    now = 1_800_000_000.0
    entry = TokenEntry(session_id=TOKEN, created_at=now - age)
    assert entry.is_fresh(now, MAX_AGE) is fresh


def test_margin_is_capped_for_short_max_ages() -> None:
    entry = TokenEntry(session_id=TOKEN, created_at=0.0)
    assert entry.is_fresh(8.9, 10.0)
    assert not entry.is_fresh(9.0, 10.0)


@pytest.mark.parametrize(
    "entry",
    [
        TokenEntry(),
        TokenEntry(session_id=None, created_at=100.0),
        TokenEntry(session_id=TOKEN, created_at=None),
        TokenEntry(session_id=None, created_at=100.0, throttled_until=5000.0),
    ],
)
def test_no_session_is_never_fresh(entry: TokenEntry) -> None:
    assert not entry.is_fresh(100.0, MAX_AGE)


@pytest.mark.parametrize(
    ("until", "now", "remaining"),
    [(None, 100.0, 0.0), (160.0, 100.0, 60.0), (160.0, 160.0, 0.0), (160.0, 500.0, 0.0)],
)
def test_throttle_remaining(until: float | None, now: float, remaining: float) -> None:
    assert TokenEntry(throttled_until=until).throttle_remaining(now) == remaining


def test_with_session_clears_throttle_and_with_throttle_keeps_session() -> None:
    throttled = TokenEntry(session_id="old", created_at=1.0).with_throttle(900.0)
    assert (throttled.session_id, throttled.created_at, throttled.throttled_until) == (
        "old",
        1.0,
        900.0,
    )
    renewed = throttled.with_session("new", 50.0)
    assert (renewed.session_id, renewed.created_at, renewed.throttled_until) == ("new", 50.0, None)


def test_entry_repr_hides_the_token() -> None:
    entry = TokenEntry(session_id=TOKEN, created_at=1.0)
    assert TOKEN not in repr(entry)
    assert TOKEN not in str(entry)


# -- files ---------------------------------------------------------------------------


def test_missing_file_means_nothing_cached(store: TokenStore) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.load(URL, USER) is None
    assert not store.directory.exists()  # reading never creates anything


def test_round_trip_and_private_permissions(store: TokenStore) -> None:
    entry = TokenEntry(session_id=TOKEN, created_at=1_700_000_000.5, throttled_until=None)
    store.save(URL, USER, entry)
    assert store.load(URL, USER) == entry
    path = store.path_for(URL, USER)
    assert path.parent == store.directory
    assert mode(path) == 0o600
    assert mode(store.directory) == 0o700
    assert json.loads(path.read_text()) == {
        "version": SCHEMA_VERSION,
        "url": URL,
        "username": USER,
        "session_id": TOKEN,
        "created_at": 1_700_000_000.5,
        "throttled_until": None,
    }
    # Nothing but the entry (and no temp file) is left behind.
    assert sorted(p.name for p in store.directory.iterdir()) == [path.name]


def test_permissions_hold_under_a_permissive_umask(store: TokenStore) -> None:
    old = os.umask(0)
    try:
        store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0))
        with store.lock(URL, USER):
            lock_file = store.path_for(URL, USER).with_suffix(".lock")
            assert mode(lock_file) == 0o600
    finally:
        os.umask(old)
    assert mode(store.path_for(URL, USER)) == 0o600
    assert mode(store.directory) == 0o700


def test_an_existing_open_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(0o755)
    store = TokenStore(directory)
    store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0))
    assert mode(directory) == 0o700


def test_overwrite_replaces_the_file(store: TokenStore) -> None:
    store.save(URL, USER, TokenEntry(session_id="first", created_at=1.0))
    inode = store.path_for(URL, USER).stat().st_ino
    store.save(URL, USER, TokenEntry(session_id="second", created_at=2.0))
    loaded = store.load(URL, USER)
    assert loaded is not None and loaded.session_id == "second"
    assert store.path_for(URL, USER).stat().st_ino != inode  # a new file, renamed into place


def test_entries_are_keyed_by_url_and_user(store: TokenStore) -> None:
    keys = [(URL, USER), (URL, "bob@partner.example"), ("http://127.0.0.1:8080", USER)]
    for n, (url, user) in enumerate(keys):
        store.save(url, user, TokenEntry(session_id=f"token-{n}", created_at=float(n)))
    for n, (url, user) in enumerate(keys):
        loaded = store.load(url, user)
        assert loaded is not None and loaded.session_id == f"token-{n}"
    assert len({store.path_for(url, user) for url, user in keys}) == 3
    assert all(USER not in p.name for p in store.directory.iterdir())


def test_a_file_for_another_key_is_not_used(store: TokenStore) -> None:
    store.save(URL, "bob@partner.example", TokenEntry(session_id=TOKEN, created_at=1.0))
    store.path_for(URL, "bob@partner.example").rename(store.path_for(URL, USER))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.load(URL, USER) is None


def test_delete(store: TokenStore) -> None:
    store.delete(URL, USER)  # nothing there: fine
    store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0))
    store.delete(URL, USER)
    assert store.load(URL, USER) is None
    assert not store.path_for(URL, USER).exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"version": 99, "url": "%s", "username": "%s"}' % (URL.encode(), USER.encode()),
        b'{"version": 1, "url": "%s", "username": "%s", "session_id": 5}'
        % (URL.encode(), USER.encode()),
        b'{"version": 1, "url": "%s", "username": "%s", "session_id": "x", "created_at": "x"}'
        % (URL.encode(), USER.encode()),
        b'{"version": 1, "url": "%s", "username": "%s", "session_id": "x", "created_at": NaN}'
        % (URL.encode(), USER.encode()),
    ],
    ids=["empty", "truncated", "text", "binary", "list", "version", "id-type", "time-type", "nan"],
)
def test_corrupt_file_is_ignored_with_a_warning(store: TokenStore, content: bytes) -> None:
    store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0))
    store.path_for(URL, USER).write_bytes(content)
    with pytest.warns(CacheWarning, match="corrupt"):
        assert store.load(URL, USER) is None
    # The next save repairs it.
    store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=2.0))
    assert store.load(URL, USER) == TokenEntry(session_id=TOKEN, created_at=2.0)


def test_unreadable_entry_is_ignored_with_a_warning(store: TokenStore) -> None:
    store.path_for(URL, USER).mkdir(parents=True)  # reading a directory fails with OSError
    with pytest.warns(CacheWarning, match="could not be read"):
        assert store.load(URL, USER) is None


def test_unwritable_directory_warns_and_carries_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    store = TokenStore(blocker / "cache")
    with pytest.warns(CacheWarning, match="could not be written"):
        store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0))
    with pytest.warns(CacheWarning, match="lock"), store.lock(URL, USER):
        ran = True
    assert ran
    with pytest.warns(CacheWarning, match="could not be read"):
        assert store.load(URL, USER) is None


def test_nothing_secret_beyond_the_token_is_written(store: TokenStore) -> None:
    store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0))
    assert set(json.loads(store.path_for(URL, USER).read_text())) == {
        "version",
        "url",
        "username",
        "session_id",
        "created_at",
        "throttled_until",
    }


# -- concurrency ---------------------------------------------------------------------


def test_concurrent_writers_and_readers_never_see_half_a_file(store: TokenStore) -> None:
    """Atomic replace: 8 writer threads and 4 readers; any torn read would warn (= error)."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def write(worker: int) -> None:
        try:
            for n in range(60):
                token = f"{worker}-{n}-" + "x" * 2000  # big enough to need several writes
                store.save(URL, USER, TokenEntry(session_id=token, created_at=float(n)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                entry = store.load(URL, USER)
                assert entry is None or (entry.session_id or "").endswith("x" * 2000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        readers = [threading.Thread(target=read) for _ in range(4)]
        writers = [threading.Thread(target=write, args=(w,)) for w in range(8)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()
    assert errors == []
    assert [p.name for p in store.directory.iterdir() if p.name.startswith(".tmp-")] == []


INCREMENT = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("error")
    from massive_magic.token_store import TokenEntry, TokenStore
    store = TokenStore(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        with store.lock("{url}", "{user}"):
            entry = store.load("{url}", "{user}") or TokenEntry(session_id="t", created_at=0.0)
            bumped = TokenEntry(session_id="t", created_at=entry.created_at + 1)
            store.save("{url}", "{user}", bumped)
    """
).format(url=URL, user=USER)


@pytest.mark.slow  # seconds of real waiting: out of the fast loop
def test_lock_serialises_read_modify_write_across_processes(store: TokenStore) -> None:
    """Four processes each add 1 fifty times under the lock: no update is lost."""
    procs = [
        subprocess.Popen([sys.executable, "-c", INCREMENT, str(store.directory), "50"])
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    entry = store.load(URL, USER)
    assert entry is not None and entry.created_at == 200.0


def test_lock_is_exclusive_between_stores_in_one_process(store: TokenStore) -> None:
    """Two TokenStore objects (two sessions in one kernel) still exclude each other."""
    other = TokenStore(store.directory)
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with store.lock(URL, USER):
            inside.set()
            release.wait(5)
            order.append("first released")

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(5)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    with other.lock(URL, USER):
        order.append("second acquired")
    thread.join()
    timer.join()
    assert order == ["first released", "second acquired"]


def test_numbers_survive_exactly(store: TokenStore) -> None:
    created = 1_767_225_600.123456
    store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=created, throttled_until=math.pi))
    loaded = store.load(URL, USER)
    assert loaded is not None
    assert (loaded.created_at, loaded.throttled_until) == (created, math.pi)


# -- a directory only we can write ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "owner", "problem"),
    [
        (0o040700, 1000, None),
        (0o040755, 1000, None),  # readable by others: tightened on first write
        (0o040770, 1000, "group or others may write to it (mode 0770)"),
        (0o041777, 1000, "group or others may write to it (mode 1777)"),  # /tmp
        (0o040700, 0, "it belongs to another user (uid 0)"),
        (0o040777, 0, "it belongs to another user (uid 0)"),
    ],
)
def test_directory_problem(mode: int, owner: int, problem: str | None) -> None:
    assert directory_problem(mode, owner, 1000) == problem
    assert directory_problem(0o040777, 0, None) is not None  # no uids: the mode still counts


def test_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    store = TokenStore(shared)
    for call in (
        lambda: store.load(URL, USER),
        lambda: store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0)),
    ):
        with pytest.raises(ConfigError, match=f"{shared} is not private"):
            call()
    with pytest.raises(ConfigError), store.lock(URL, USER):
        pass
    assert list(shared.iterdir()) == []  # nothing read from or written to it


def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    """The owner is injectable: a private directory that is not ``owner``'s is refused."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    someone_else = private.stat().st_uid + 1
    with pytest.raises(ConfigError, match="belongs to another user"):
        TokenStore(private, owner=someone_else).load(URL, USER)
    assert TokenStore(private).load(URL, USER) is None  # ours: fine


# -- lock files leave with their entry ----------------------------------------------------


def test_the_lock_file_goes_with_the_entry(store: TokenStore) -> None:
    lock_file = store.path_for(URL, USER).with_suffix(".lock")
    with store.lock(URL, USER):
        store.save(URL, USER, TokenEntry(session_id=TOKEN, created_at=1.0))
    assert lock_file.exists()  # the entry is there: its lock stays
    with store.lock(URL, USER):
        store.delete(URL, USER)
        assert lock_file.exists()  # removed only at release, while still held
    assert list(store.directory.iterdir()) == []


COUNT = textwrap.dedent(
    """
    import sys, time, warnings
    from pathlib import Path
    warnings.simplefilter("error")
    from massive_magic.token_store import TokenEntry, TokenStore
    store = TokenStore(sys.argv[1])
    counter = Path(sys.argv[1]) / "counter"
    for n in range(int(sys.argv[2])):
        with store.lock("{url}", "{user}"):
            value = int(counter.read_text())
            store.save("{url}", "{user}", TokenEntry(session_id="t", created_at=float(n)))
            time.sleep(0.002)  # widen the window a second holder would need
            counter.write_text(str(value + 1))
            store.delete("{url}", "{user}")  # so the lock file is removed at each release
    """
).format(url=URL, user=USER)


def test_removing_lock_files_keeps_the_lock_exclusive_across_processes(
    store: TokenStore,
) -> None:
    """Four processes add 1 fifty times while every release removes the lock file:
    a waiter left on a removed file must not run beside the next holder."""
    store.directory.mkdir(mode=0o700, parents=True)
    (store.directory / "counter").write_text("0")
    procs = [
        subprocess.Popen([sys.executable, "-c", COUNT, str(store.directory), "50"])
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert (store.directory / "counter").read_text() == "200"
    assert sorted(p.name for p in store.directory.iterdir()) == ["counter"]
