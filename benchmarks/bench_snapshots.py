"""Benchmark: replaying the 1,000,000-row card from a snapshot, against reading it live.

The sandbox runs in its own process (as in ``bench_card.py``). Printed side by
side in the same run, best (median) of ``--repeat`` (of ``--rounds`` for the three
reads, which take turns so that other load on the machine hits them alike):

* live: ``Client(progress=False).card(LARGE)`` with a warm session;
* record: ``SnapshotStore.save`` of that frame (encode, zstd Parquet, checksums, fsync);
* replay: ``SnapshotStore.load`` (checksum, read, decode to the exact dtypes, attrs);
* replay through the Client: ``Client(snapshots=..., snapshot_mode="replay").card(LARGE)``
  (the store's load plus the wiring: key, metadata lookup; no request);
* baseline: ``pandas.read_parquet`` of the same snapshot's Parquet file (no checksum,
  pandas' default dtypes), and of ``df.to_parquet()`` of the same frame.

Then the snapshot's size on disk next to the frame's memory
(``df.memory_usage(deep=True).sum()``).

    python benchmarks/bench_snapshots.py [--repeat N] [--rounds N]

Target: replay <= 1.5x pandas.read_parquet of the same Parquet file.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from bench_card import start_sandbox  # the sandbox in its own process, as there
from pandas.testing import assert_frame_equal

from massive_magic import Client
from massive_magic.sandbox import demo
from massive_magic.snapshots import SnapshotStore


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="live reads and records")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the three reads")
    args = parser.parse_args()

    proc, url = start_sandbox()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            client = Client(
                url, demo.DEMO_USERNAME, demo.DEMO_PASSWORD, cache_dir=tmp, progress=False
            )
            client.login()
            client.card(demo.LARGE)  # warm the server's table
            print(f"LARGE card {demo.LARGE}: {demo.LARGE_ROWS:,} rows")
            print(
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start "
                "(other work on the machine makes the medians noisy)"
            )
            times: dict[str, list[float]] = {}
            times["live"], live = timed(lambda: client.card(demo.LARGE), args.repeat)
            client.close()

            store = SnapshotStore(Path(tmp) / "snapshots")
            m = live.attrs["massive"]
            key = store.key(m["url"], m["card_id"], m["parameters"], m["limit"])
            times["record"], manifest = timed(lambda: store.save(key, live), args.repeat)
            info = store.find(key)
            assert info is not None
            pandas_file = Path(tmp) / "pandas.parquet"
            live.to_parquet(pandas_file)

            # The reads take turns, round by round, so a busy machine slows all alike.
            offline = Client(
                url, cache_dir=tmp, progress=False, snapshots=store.directory,
                snapshot_mode="replay",
            )  # fmt: skip
            readers: dict[str, Callable[[], Any]] = {
                "replay": lambda: store.load(key),
                "replay_client": lambda: offline.card(demo.LARGE),
                "read_parquet": lambda: pd.read_parquet(info.parquet),
                "read_parquet_pandas": lambda: pd.read_parquet(pandas_file),
            }
            replayed = store.load(key)
            for _ in range(args.rounds):
                for name, read in readers.items():
                    seconds, _ = timed(read, 1)
                    times.setdefault(name, []).extend(seconds)
            assert_frame_equal(replayed, live, check_exact=True)
            assert_frame_equal(offline.card(demo.LARGE), live, check_exact=True)
            assert replayed.attrs["massive"]["fetched_at"] == m["fetched_at"]

            best = {k: min(v) for k, v in times.items()}
            med = {k: statistics.median(v) for k, v in times.items()}
            labels = {
                "live": "live: Client.card(LARGE)",
                "record": "record: SnapshotStore.save",
                "replay": "replay: SnapshotStore.load",
                "replay_client": "replay: Client(snapshot_mode='replay').card",
                "read_parquet": "pandas.read_parquet(the snapshot's .parquet)",
                "read_parquet_pandas": "pandas.read_parquet(df.to_parquet() file)",
            }
            print(
                f"\nwall time, best (median) of {args.repeat} (live, record) and of "
                f"{args.rounds} interleaved rounds (the reads):"
            )
            for name, label in labels.items():
                print(f"  {label:46s} {best[name]:7.3f} s ({med[name]:.3f} s)")
            print(
                f"  replay / read_parquet = {best['replay'] / best['read_parquet']:.2f}x "
                "(target <= 1.5x); "
                f"replay / read_parquet(pandas file) = "
                f"{best['replay'] / best['read_parquet_pandas']:.2f}x; "
                f"live / replay = {best['live'] / best['replay']:.1f}x"
            )

            frame_bytes = int(live.memory_usage(deep=True).sum())
            parquet_bytes = info.parquet.stat().st_size
            manifest_bytes = manifest.stat().st_size
            print("\nsize:")
            print(f"  frame in memory, df.memory_usage(deep=True)   {mb(frame_bytes)}")
            print(
                f"  snapshot on disk (Parquet + manifest)          {mb(info.size)}"
                f"  = {info.size / frame_bytes:.2f}x the frame"
                f"  (Parquet {mb(parquet_bytes)}, manifest {manifest_bytes:,} bytes)"
            )
            print(
                f"  df.to_parquet() of the same frame (snappy)     {mb(pandas_file.stat().st_size)}"
            )
            print("  dtypes replayed: " + ", ".join(f"{c}={t}" for c, t in replayed.dtypes.items()))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
