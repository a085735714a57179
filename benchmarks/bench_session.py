"""Per-request overhead of MetabaseSession against a bare requests.Session, side by side.

    python benchmarks/bench_session.py [--requests 3000]

Starts the sandbox on 127.0.0.1, logs in once (warm cache), then times
``GET /api/user/current`` through ``MetabaseSession.request`` and through a bare
``requests.Session().get(url, headers={"X-Metabase-Session": token})``, strictly
alternated so that load on the machine hits both alike. Prints median, p95 and
mean per request, the ratio and the absolute overhead. Target: within 10%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import requests

from massive_magic import sandbox
from massive_magic.session import MetabaseSession
from massive_magic.settings import Settings
from massive_magic.token_store import TokenStore

PATH = "/api/user/current"
TARGET = 1.10


def timed(call: Callable[[], object], n: int) -> list[float]:
    """Seconds per call, one sample per call."""
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per contender")
    args = parser.parse_args(argv)
    with sandbox.start(port=0) as srv, tempfile.TemporaryDirectory() as cache:
        settings = Settings(
            url=srv.url, username=srv.username, password=srv.password, cache_dir=cache
        )
        session = MetabaseSession(settings)
        session.login()
        entry = TokenStore(cache).load(srv.url, srv.username)
        assert entry is not None and entry.session_id
        token = entry.session_id

        bare = requests.Session()
        url = f"{srv.url}{PATH}"
        timeout = (settings.connect_timeout, settings.read_timeout)

        def through_session() -> object:
            return session.request("GET", PATH).content

        def through_bare() -> object:
            response = bare.get(url, headers={"X-Metabase-Session": token}, timeout=timeout)
            response.raise_for_status()
            return response.content

        # Warm both connection pools and the server's code paths.
        timed(through_session, 200)
        timed(through_bare, 200)

        # Strictly alternated (order swapped every other pair), so a busy machine slows
        # both contenders alike; the paired differences estimate the overhead directly.
        ours: list[float] = []
        theirs: list[float] = []
        clock = time.perf_counter
        for n in range(args.requests):
            for call in (
                (through_session, through_bare) if n % 2 else (through_bare, through_session)
            ):
                start = clock()
                call()
                (ours if call is through_session else theirs).append(clock() - start)
        paired = [a - b for a, b in zip(ours, theirs, strict=True)]

        # A new MetabaseSession (a new kernel) with the warm cache: no login; the first
        # session taken from disk is checked once (GET /api/user/current), then the request.
        srv.reset_log()
        start = time.perf_counter()
        fresh = MetabaseSession(settings)
        fresh.request("GET", PATH).content  # noqa: B018
        cold = time.perf_counter() - start
        cold_logins = srv.count("POST", "/api/session")
        cold_requests = srv.count()  # the cached session's owner check, then the request
        fresh.close()

        session.close()
        bare.close()

    rows = [
        ("bare requests.Session + header", theirs),
        ("MetabaseSession.request", ours),
    ]
    print(f"GET {PATH} on the sandbox at 127.0.0.1, {len(ours)} requests each,")
    python = sys.version.split()[0]
    print(f"strictly alternated, warm token cache, python {python}")
    print()
    print(f"{'':34}{'median':>11}{'p95':>11}{'mean':>11}")
    for name, samples in rows:
        print(
            f"{name:34}{ms(statistics.median(samples))}{ms(p95(samples))}"
            f"{ms(statistics.fmean(samples))}"
        )
    ratio_median = statistics.median(ours) / statistics.median(theirs)
    ratio_p95 = p95(ours) / p95(theirs)
    ratio_mean = statistics.fmean(ours) / statistics.fmean(theirs)
    ratios = f"{ratio_median:11.3f}{ratio_p95:11.3f}{ratio_mean:11.3f}"
    print(f"{'ratio (MetabaseSession / bare)':34}{ratios}")
    overhead = statistics.median(paired)
    print(f"{'overhead per request (paired median)':34}{overhead * 1e6:+8.1f} µs")
    print()
    print(f"new MetabaseSession, warm cache, first request: {cold * 1000:.2f} ms, ", end="")
    print(f"{cold_logins} logins, {cold_requests} requests")
    verdict = "OK" if ratio_median <= TARGET else "ABOVE TARGET"
    print(f"target: median within {TARGET - 1:.0%} of bare requests -> {verdict}")
    return 0 if ratio_median <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
