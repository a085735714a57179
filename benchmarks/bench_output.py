"""Benchmark: the 1,000,000-row card as an Arrow table, a pandas frame, a polars frame.

The sandbox runs in its own process (``bench_card.start_sandbox``). Printed side by
side in the same run, best (median) of ``--repeat``:

* floor: the card's csv export downloaded and read by ``pyarrow.csv.read_csv``
  (Arrow's multithreaded CSV reader, its own type inference: no Metabase types);
* ``Client.card(LARGE, output="arrow")``: typed chunks straight into a ``pyarrow.Table``;
* ``Client.card(LARGE)`` (``output="pandas"``): the same chunks into a typed DataFrame;
* ``Client.card(LARGE, output="polars")``: the Arrow table handed to polars.

Wall time and this process's CPU time (the server is another process), so a busy
machine blurs the comparison less. Then the step that differs, alone: the same
stored batches built into a DataFrame (``FrameBuilder.build``) or a table
(``build_arrow``). Last, what writing the result costs, per ``massive-magic
export`` format (the table, or the frame for parquet, to a temporary directory).

    python benchmarks/bench_output.py [--repeat N]

Target: arrow measurably faster than pandas, both within reach of the floor.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv
from bench_card import CHUNK, download, mb, start_sandbox, timed, token_for

from massive_magic import Client, export
from massive_magic.frames import FrameBuilder
from massive_magic.rowstream import ApiRowStream
from massive_magic.sandbox import demo


def csv_floor(url: str, token: str) -> int:
    """Download the csv export and let pyarrow read it (no Metabase types)."""
    body = download(url, token, "csv")
    return int(pa_csv.read_csv(io.BytesIO(body)).num_rows)


def measured(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, this process's CPU seconds (all threads), and the result."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def build_step(body: bytes, repeat: int) -> dict[str, list[float]]:
    """CPU seconds of ``build`` and ``build_arrow`` on the same stored batches."""
    spent: dict[str, list[float]] = {"pandas": [], "arrow": []}
    for _ in range(repeat):
        chunks = (body[i : i + CHUNK] for i in range(0, len(body), CHUNK))
        stream = ApiRowStream(chunks, batch_bytes=4 << 20)
        for_pandas, for_arrow = FrameBuilder(), FrameBuilder()
        for batch in stream:
            for_pandas.add_rows(batch)
            for_arrow.add_rows(batch)
        assert isinstance(stream.tail, dict)
        data = stream.tail["data"]
        cols, zone = data["cols"], data["results_timezone"]
        spent["pandas"].append(
            measured(lambda: for_pandas.build(cols, results_timezone=zone))[1]  # noqa: B023
        )
        spent["arrow"].append(
            measured(lambda: for_arrow.build_arrow(cols, results_timezone=zone))[1]  # noqa: B023
        )
    return spent


def write_costs(table: Any, frame: Any, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        for fmt in export.FORMATS:
            source = frame if export.READ_AS[fmt] == "pandas" else table
            path = Path(out) / f"large.{fmt}"

            def write(source: Any = source, fmt: str = fmt, path: Path = path) -> None:
                export.write_file(source, fmt, path)

            spent = [timed(write)[0] for _ in range(repeat)]
            print(
                f"  {fmt:8s} {min(spent):6.2f} s  {mb(path.stat().st_size)}"
                f"  (from the {export.READ_AS[fmt]} result)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    proc, url = start_sandbox()
    try:
        token = token_for(url)
        csv_floor(url, token)  # warm the server's table
        print(f"LARGE card {demo.LARGE}: {demo.LARGE_ROWS:,} rows")
        print(
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start "
            "(other work on the machine makes the medians noisy)"
        )
        with tempfile.TemporaryDirectory() as cache:
            client = Client(url, demo.DEMO_USERNAME, demo.DEMO_PASSWORD, cache_dir=cache)
            client.progress = False
            client.login()
            contenders: dict[str, Callable[[], Any]] = {
                "floor": lambda: csv_floor(url, token),
                "arrow": lambda: client.card(demo.LARGE, output="arrow"),
                "pandas": lambda: client.card(demo.LARGE),
                "polars": lambda: client.card(demo.LARGE, output="polars"),
            }
            times: dict[str, list[float]] = {name: [] for name in contenders}
            cpu: dict[str, list[float]] = {name: [] for name in contenders}
            results: dict[str, Any] = {}
            for _ in range(args.repeat):
                for name, call in contenders.items():
                    results.pop(name, None)  # one result alive at a time
                    seconds, cpu_seconds, results[name] = measured(call)
                    times[name].append(seconds)
                    cpu[name].append(cpu_seconds)
            client.close()
        best = {k: min(v) for k, v in times.items()}
        med = {k: statistics.median(v) for k, v in times.items()}
        best_cpu = {k: min(v) for k, v in cpu.items()}
        labels = {
            "floor": "floor: csv export + pyarrow.csv.read_csv",
            "arrow": 'Client.card(output="arrow") -> pa.Table',
            "pandas": 'Client.card(output="pandas") -> DataFrame',
            "polars": 'Client.card(output="polars") -> pl.DataFrame',
        }
        print(f"\nwall time, best (median) of {args.repeat}; best CPU time of this process:")
        for key, label in labels.items():
            print(
                f"  {label:46s} {best[key]:6.2f} s ({med[key]:.2f} s)   cpu {best_cpu[key]:5.2f} s"
            )
        print(
            f"  wall: pandas / arrow = {best['pandas'] / best['arrow']:.2f}x, "
            f"arrow / floor = {best['arrow'] / best['floor']:.2f}x; "
            f"cpu: pandas / arrow = {best_cpu['pandas'] / best_cpu['arrow']:.2f}x, "
            f"arrow / floor = {best_cpu['arrow'] / best_cpu['floor']:.2f}x"
        )
        table, frame = results["arrow"], results["pandas"]
        print(f"  sizes: table {mb(table.nbytes)}, frame {mb(frame.memory_usage(deep=True).sum())}")

        del results
        step = build_step(download(url, token), args.repeat)
        print("\nthe step that differs, on the same stored batches (CPU, best of the runs):")
        print(f"  FrameBuilder.build()        -> DataFrame  {min(step['pandas']):6.3f} s")
        print(f"  FrameBuilder.build_arrow()  -> pa.Table   {min(step['arrow']):6.3f} s")
        print(f"  build / build_arrow = {min(step['pandas']) / min(step['arrow']):.1f}x")

        print("\nwriting the result (massive-magic export's formats, best of the runs):")
        write_costs(table, frame, args.repeat)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
