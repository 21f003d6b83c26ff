"""How long ``lt-bench report`` takes on one runs folder, before and after a change, in one run.

    python bench/report_speed.py results/runs/fashion_mnist_lt --before 731d994 --repeats 2

The code at ``--before`` (a git revision of this repository) is exported to a temporary folder and
both versions report the same runs into temporary output folders, interleaved (before, after,
before, after, ...) so that a machine that slows down part-way hurts both alike. Each report is a
fresh process, so imports (torch, matplotlib, scikit-learn) are counted as a user pays them. Prints
the median wall time of each and their ratio; extra arguments after ``--`` go to both reports
(e.g. ``-- --no-figures``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(revision: str, into: Path) -> Path:
    """The package at ``revision``, unpacked into ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "lt_bench"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def timed_report(code: Path, runs: Path, out: Path, extra: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lt_bench.cli", "report", str(runs), "--out", str(out), *extra],
        check=True,
        env=env,
        cwd=code,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--before", required=True, help="git revision of the old code")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--before-args", default="", help="extra report arguments, old code only")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    runs = args.runs.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        old = export(args.before, Path(tmp) / "before")
        new = ROOT
        times: dict[str, list[float]] = {"before": [], "after": []}
        for i in range(args.repeats):
            for name, code in (("before", old), ("after", new)):
                own = args.before_args.split() if name == "before" else []
                out = Path(tmp) / f"{name}_{i}"
                times[name].append(timed_report(code, runs, out, extra + own))
                print(f"  {name} #{i + 1}: {times[name][-1]:.1f} s", flush=True)
    before, after = (statistics.median(times[k]) for k in ("before", "after"))
    print(f"report of {runs.name}: before ({args.before}) {before:.1f} s, after {after:.1f} s")
    print(f"before / after: {before / after:.1f}x")


if __name__ == "__main__":
    main()
