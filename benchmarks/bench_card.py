"""Benchmark: ``Client.card()`` on the 1,000,000-row card, against two baselines.

The sandbox runs in its own process (as Metabase would), so the client and the
server do not share a GIL. Printed side by side in the same run:

* floor: download the same ``api`` export bytes with ``requests`` (1 MiB chunks)
  and ``orjson.loads`` them -- the fastest parse found, and no DataFrame at all;
* naive: the code from the docs, ``requests.post(".../query/json").json()`` then
  ``pd.DataFrame(...)`` (untyped object columns);
* ours: ``Client(progress=False).card(LARGE)`` with a warm session (typed frame).

Then peak memory while fetching, each in a fresh process: resident set size
sampled every 2 ms (minus the RSS before the fetch), and for ours also
tracemalloc's peak plus Arrow's pool peak, next to the final
``df.memory_usage(deep=True)``. Finally the number of HTTP requests per call with
a warm session, counted by an in-process sandbox's request log.

    python benchmarks/bench_card.py [--repeat N]

Targets: ours <= 1.5x floor, >= 3x faster than naive, peak memory <= 3x the frame.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pandas as pd
import requests

from massive_magic import Client
from massive_magic.sandbox import demo

CHUNK = 1 << 20
FORM = {"parameters": "[]", "format_rows": "false", "pivot_results": "false"}


# -- a sandbox in another process ------------------------------------------------------------


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "massive_magic.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "Metabase sandbox at " not in line:
        proc.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return proc, line.split(" at ", 1)[1].strip()


def token_for(url: str) -> str:
    answer = requests.post(
        f"{url}/api/session",
        json={"username": demo.DEMO_USERNAME, "password": demo.DEMO_PASSWORD},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["id"])


# -- the three contenders --------------------------------------------------------------------


def download(url: str, token: str, fmt: str = "api") -> bytes:
    """The LARGE card's ``fmt`` export (api, csv), whole."""
    with requests.post(
        f"{url}/api/card/{demo.LARGE}/query/{fmt}",
        data=FORM,
        headers={"X-Metabase-Session": token},
        stream=True,
        timeout=600,
    ) as response:
        response.raise_for_status()
        return b"".join(response.iter_content(CHUNK))


def floor(url: str, token: str) -> int:
    doc = orjson.loads(download(url, token))
    return len(doc["data"]["rows"])


def download_json(url: str, token: str) -> int:
    with requests.post(
        f"{url}/api/card/{demo.LARGE}/query/json",
        headers={"X-Metabase-Session": token},
        stream=True,
        timeout=600,
    ) as response:
        response.raise_for_status()
        return sum(len(chunk) for chunk in response.iter_content(CHUNK))


def naive(url: str, token: str) -> pd.DataFrame:
    rows = requests.post(
        f"{url}/api/card/{demo.LARGE}/query/json",
        headers={"X-Metabase-Session": token},
        timeout=600,
    ).json()
    return pd.DataFrame(rows)


def ours(client: Client) -> pd.DataFrame:
    return client.card(demo.LARGE)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# -- memory, in a fresh process ----------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssPeak:
    """Sample the resident set size every 2 ms while a block runs."""

    def __enter__(self) -> RssPeak:
        gc.collect()
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def delta(self) -> int:
        return self.peak - self.base


def memory_child(kind: str, url: str) -> None:
    """Run one fetch in this fresh process; print a JSON line of figures."""
    import pyarrow as pa

    out: dict[str, Any] = {"kind": kind}
    token = token_for(url)
    with tempfile.TemporaryDirectory() as cache:
        client = Client(url, demo.DEMO_USERNAME, demo.DEMO_PASSWORD, cache_dir=cache)
        client.progress = False
        client.login()
        if kind == "tracemalloc":
            import tracemalloc

            tracemalloc.start()
            df = ours(client)
            out["traced_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out["arrow_pool_peak"] = pa.default_memory_pool().max_memory()
            out["frame"] = int(df.memory_usage(deep=True).sum())
        else:
            with RssPeak() as rss:
                if kind == "ours":
                    df = ours(client)
                elif kind == "naive":
                    df = naive(url, token)
                else:
                    df = None
                    floor(url, token)
            out["rss_peak_delta"] = rss.delta
            if df is not None:
                out["frame"] = int(df.memory_usage(deep=True).sum())
        client.close()
    print(json.dumps(out))


def memory(kind: str, url: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", kind, url],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- round trips, counted by an in-process sandbox --------------------------------------------


def round_trips() -> list[tuple[str, int]]:
    from massive_magic import sandbox

    figures = []
    with sandbox.start(port=0) as srv, tempfile.TemporaryDirectory() as cache:
        client = Client(srv.url, srv.username, srv.password, cache_dir=cache, progress=False)
        client.login()
        client.card_info(demo.SEQUENCE)  # warm: session and parameter declarations
        for label, call in [
            ("11-row card, first call *", lambda: client.card(demo.ALL_TYPES)),
            ("11-row card, again", lambda: client.card(demo.ALL_TYPES)),
            ("1,999 rows (rows=1999)", lambda: client.card(demo.SEQUENCE, {"rows": 1999})),
            ("2,000 rows (rows=2000)", lambda: client.card(demo.SEQUENCE, {"rows": 2000})),
            ("2,001 rows (rows=2001)", lambda: client.card(demo.SEQUENCE, {"rows": 2001})),
            ("5,000 rows (rows=5000)", lambda: client.card(demo.SEQUENCE, {"rows": 5000})),
            ("1,000,000 rows (LARGE), first *", lambda: client.card(demo.LARGE)),
            (
                "2,000 rows, limit=100",
                lambda: client.card(demo.SEQUENCE, {"rows": 2000}, limit=100),
            ),
        ]:
            srv.reset_log()
            call()
            figures.append((label, len(srv.log)))
        client.close()
    return figures


# -- main ----------------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-child", nargs=2, metavar=("KIND", "URL"))
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    proc, url = start_sandbox()
    try:
        token = token_for(url)
        body = download(url, token)  # warm the server's table and the page cache
        print(f"LARGE card {demo.LARGE}: {demo.LARGE_ROWS:,} rows, api export {mb(len(body))}")
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start "
            "(other work on the machine makes the medians noisy)"
        )
        del body
        with tempfile.TemporaryDirectory() as cache:
            client = Client(url, demo.DEMO_USERNAME, demo.DEMO_PASSWORD, cache_dir=cache)
            client.progress = False
            client.login()
            times: dict[str, list[float]] = {
                "download": [],
                "floor": [],
                "download_json": [],
                "naive": [],
                "ours": [],
            }
            frame = None
            for _ in range(args.repeat):
                times["download"].append(timed(lambda: download(url, token))[0])
                times["floor"].append(timed(lambda: floor(url, token))[0])
                times["download_json"].append(timed(lambda: download_json(url, token))[0])
                times["naive"].append(timed(lambda: naive(url, token))[0])
                seconds, frame = timed(lambda: ours(client))
                times["ours"].append(seconds)
            client.close()
        assert frame is not None and len(frame) == demo.LARGE_ROWS
        best = {k: min(v) for k, v in times.items()}
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\nwall time, best (median) of {args.repeat}:")
        labels = {
            "download": "download only (requests, 1 MiB chunks)",
            "floor": "floor: download + orjson.loads",
            "download_json": "download only of the json export",
            "naive": "naive: /query/json .json() + pd.DataFrame",
            "ours": "ours: Client.card() -> typed DataFrame",
        }
        for key, label in labels.items():
            print(f"  {label:44s} {best[key]:7.2f} s ({med[key]:.2f} s)")
        print(
            f"  ours / floor = {best['ours'] / best['floor']:.2f}x (target <= 1.5x); "
            f"naive / ours = {best['naive'] / best['ours']:.2f}x (target >= 3x)"
        )
        print(
            "  time above the bare download of the same export: "
            f"ours {best['ours'] - best['download']:.2f} s, "
            f"floor {best['floor'] - best['download']:.2f} s, "
            f"naive {best['naive'] - best['download_json']:.2f} s"
        )
        print("  dtypes of ours: " + ", ".join(f"{c}={t}" for c, t in frame.dtypes.items()))
        del frame
        gc.collect()

        print("\npeak memory during the fetch (fresh process each):")
        ours_mem = memory("ours", url)
        traced = memory("tracemalloc", url)
        naive_mem = memory("naive", url)
        floor_mem = memory("floor", url)
        frame_bytes = ours_mem["frame"]
        print(f"  final frame, df.memory_usage(deep=True)        {mb(frame_bytes)}")
        print(
            f"  ours:  RSS peak - RSS before                   {mb(ours_mem['rss_peak_delta'])}"
            f"  = {ours_mem['rss_peak_delta'] / frame_bytes:.2f}x the frame (target <= 3x)"
        )
        py_peak = traced["traced_peak"] + traced["arrow_pool_peak"]
        print(
            f"  ours:  tracemalloc peak + Arrow pool peak      {mb(py_peak)}"
            f"  = {py_peak / frame_bytes:.2f}x  (tracemalloc {mb(traced['traced_peak'])},"
            f" Arrow {mb(traced['arrow_pool_peak'])})"
        )
        print(
            f"  naive: RSS peak - RSS before                   {mb(naive_mem['rss_peak_delta'])}"
            f"  (its frame: {mb(naive_mem['frame'])})"
        )
        print(f"  floor: RSS peak - RSS before                   {mb(floor_mem['rss_peak_delta'])}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print("\nHTTP requests per call with a warm session (in-process sandbox log):")
    for label, count in round_trips():
        print(f"  {label:32s} {count}")
    print(
        "  (the api export comes first, so any size is one request and one warehouse run;\n"
        "   * the first call of a card also looks its name up, concurrently: one round trip\n"
        "   of latency; a limit of at most 2,000 rows is one /query answer.)"
    )


if __name__ == "__main__":
    main()
