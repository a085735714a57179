"""Benchmark: ``Client.dashboard()`` on 8 cards vs the slowest card and the sequential sum.

Builds dashboards of 8 cards in an in-process sandbox (through its Python handle:
``add_card`` with a ``run`` that waits like a warehouse would, and a dashboard in
``srv.dashboards``), times each card alone with ``Client.card()``, then the whole
dashboard, and prints side by side in the same run:

* the slowest single card (the target: dashboard <= 1.5x this),
* the sum of the cards (what a loop over ``Client.card()`` costs),
* ``Client.dashboard()`` with the default ``max_workers=4`` and with 8.

Scenarios: a mixed dashboard (different query times, two cards past the 2,000-row
cap so they also stream the export) and 8 identical cards (the worst case for a
pool of 4: two full waves).

    python benchmarks/bench_dashboard.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

from massive_magic import Client, sandbox
from massive_magic.sandbox.catalog import Dashboard, Dashcard

ROWS = [[i, f"row {i}"] for i in range(1, 5_001)]


def slow_card(srv: Any, name: str, seconds: float, rows: int) -> int:
    def run(values: dict[str, Any]) -> list[list[Any]]:
        time.sleep(seconds)  # the warehouse at work
        return ROWS[:rows]

    return srv.add_card(name, [("n", "type/Integer"), ("label", "type/Text")], run=run)


def board(srv: Any, did: int, cards: list[int]) -> int:
    srv.dashboards[did] = Dashboard(
        did,
        f"Bench {did}",
        None,
        [],
        [Dashcard(5000 + i, cid, row=i // 2, col=(i % 2) * 12) for i, cid in enumerate(cards)],
    )
    return did


def best_of(n: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def scenario(
    srv: Any, client: Client, title: str, did: int, specs: list[tuple[float, int]]
) -> None:
    cards = [slow_card(srv, f"{title} {i}", s, r) for i, (s, r) in enumerate(specs)]
    board(srv, did, cards)
    alone = [best_of(2, lambda cid=cid: client.card(cid)) for cid in cards]
    slowest, total = max(alone), sum(alone)
    srv.reset_log()
    four = best_of(3, lambda: client.dashboard(did))
    requests_per_run = len(srv.log) / 3
    eight = best_of(3, lambda: client.dashboard(did, max_workers=8))
    print(
        f"\n{title}: 8 cards, query times {[s for s, _ in specs]} s, rows {[r for _, r in specs]}"
    )
    print(f"  slowest card alone (Client.card)       {slowest:6.2f} s")
    print(f"  sum of the cards (a sequential loop)   {total:6.2f} s")
    print(
        f"  Client.dashboard(), max_workers=4      {four:6.2f} s"
        f"  = {four / slowest:.2f}x slowest, {total / four:.1f}x faster than the loop"
        f"  ({requests_per_run:.0f} requests per run)"
    )
    print(
        f"  Client.dashboard(), max_workers=8      {eight:6.2f} s"
        f"  = {eight / slowest:.2f}x slowest, {total / eight:.1f}x faster than the loop"
    )


def main() -> None:
    with sandbox.start(port=0) as srv, tempfile.TemporaryDirectory() as cache:
        client = Client(srv.url, srv.username, srv.password, cache_dir=cache, progress=False)
        client.login()
        mixed = [
            (0.2, 500),
            (0.3, 1_000),
            (0.8, 300),
            (0.4, 5_000),
            (0.5, 100),
            (0.3, 2_500),
            (0.6, 50),
            (0.2, 1_500),
        ]
        scenario(srv, client, "Mixed", 880, mixed)
        scenario(srv, client, "Identical", 881, [(0.5, 1_000)] * 8)
        client.close()


if __name__ == "__main__":
    main()
