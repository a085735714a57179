"""What ``%load_ext massive_magic`` costs beyond IPython and pandas.

Each run is a fresh interpreter (so nothing is cached in ``sys.modules``):

- baseline: import IPython + pandas, create an InteractiveShell
- ours:     the same, then ``%load_ext massive_magic``

Prints both medians side by side with the difference, plus the heavy modules
that loading the extension pulled in (there should be none). The budget is 50 ms.

    python benchmarks/bench_load_ext.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

BUDGET_MS = 50.0

_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import IPython, pandas
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
t1 = time.perf_counter()
if {load}:
    shell.run_line_magic("load_ext", "massive_magic")
t2 = time.perf_counter()
new = sorted(m for m in set(sys.modules) - before if "." not in m)
print(json.dumps({{"total": t2 - t0, "ext": t2 - t1, "new": new}}))
"""

HEAVY = ("requests", "urllib3", "pyarrow", "ipywidgets", "tqdm", "orjson", "numpy", "pandas")


def _run(load: bool) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(load=load)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)

    base: list[float] = []
    ours: list[float] = []
    ext: list[float] = []
    new: list[str] = []
    _run(False)  # warm the OS file cache once
    for _ in range(args.runs):  # interleaved, so drift hits both sides alike
        base.append(float(_run(False)["total"]))
        result = _run(True)
        ours.append(float(result["total"]))
        ext.append(float(result["ext"]))
        new = list(result["new"])  # type: ignore[arg-type]

    b, o, e = (statistics.median(v) * 1000 for v in (base, ours, ext))
    print(f"median of {args.runs} fresh interpreters (ms)")
    print(f"{'baseline: IPython + pandas + shell':<44}{b:9.1f}")
    print(f"{'ours: baseline + %load_ext massive_magic':<44}{o:9.1f}")
    print(f"{'difference (ours - baseline)':<44}{o - b:9.1f}")
    print(f"{'%load_ext alone, timed in-process':<44}{e:9.1f}")
    print(f"top-level modules loaded by %load_ext: {', '.join(new) or 'none'}")
    heavy = sorted(set(new) & set(HEAVY))
    if heavy:
        print(f"heavy modules loaded at %load_ext: {', '.join(heavy)}")
    verdict = "within" if e < BUDGET_MS and not heavy else "OVER"
    print(f"{verdict} the {BUDGET_MS:.0f} ms budget")
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    raise SystemExit(main())
