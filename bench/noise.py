"""The noise trial: `loadgate gate` on the reference twin while a CPU hog (a bounded busy loop
per core) runs beside it, N runs per noise level, and the same with each broken twin (its own
gate only). Prints, per gate, how many runs gave PASS / FAIL / INVALID.

    .venv/bin/python bench/noise.py --runs 5 --hog 1 --runs-2 3 [--broken] [--no-reference]

Goal (docs/gate.md, "Verdicts under noise"): the reference twin never FAILs at any noise level
and PASSes with one core busy; every broken twin FAILs or is INVALID, never PASSes.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadgate.gate import catalogue
from loadgate.procs import spawn, stop
from loadgate.report.summary import read_summary

ROOT = Path(__file__).resolve().parents[1]
HOG = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"


def hogs(cores: int, seconds: float) -> list[subprocess.Popen]:
    """`cores` busy loops, each bounded to `seconds` (and killed when this process dies)."""
    code = HOG.format(s=seconds)
    return [spawn([sys.executable, "-c", code]) for _ in range(cores)]


def gate_run(report_dir: Path, overrides: tuple[str, ...], only: str | None):
    cmd = [sys.executable, "-m", "loadgate.cli", "gate", "--report-dir", str(report_dir)]
    for o in overrides:
        cmd += ["--twin-override", o]
    if only:
        cmd += ["--", "-k", catalogue.get(only).test_name]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    runs = sorted(report_dir.glob("gate-*"), key=lambda p: p.stat().st_mtime)
    summary = read_summary(runs[-1]) if runs else None
    statuses: dict[str, str] = {}
    if summary is not None:
        for v in summary.gates:
            prev = statuses.get(v.gate, "PASS")
            rank = {"PASS": 0, "INVALID": 1, "FAIL": 2}
            statuses[v.gate] = v.status if rank[v.status] > rank[prev] else prev
    return proc.returncode, statuses, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="reference runs with --hog cores busy")
    ap.add_argument("--hog", type=int, default=1, help="cores kept busy in the first series")
    ap.add_argument("--runs-2", type=int, default=3, help="reference runs with 2 cores busy")
    ap.add_argument("--broken", action="store_true", help="also each broken twin, per level")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument(
        "--keep", type=Path, help="keep every run's report here (for bench/gate_spread.py --from)"
    )
    args = ap.parse_args()
    series: list[tuple[str, int, int, tuple[str, ...], str | None]] = []
    if not args.no_reference:
        series += [("reference", args.hog, args.runs, (), None)]
        if args.runs_2:
            series += [("reference", 2, args.runs_2, (), None)]
    if args.broken:
        for g in catalogue.GATES:
            for cores in sorted({args.hog, 2}):
                series.append(
                    (f"broken {g.name} ({' '.join(g.broken)})", cores, 1, g.broken, g.name)
                )
    counts: dict[tuple[str, int, str], collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    with tempfile.TemporaryDirectory(prefix="lg-noise-") as d:
        root = args.keep or Path(d)
        for name, cores, n, overrides, only in series:
            for i in range(n):
                busy = hogs(cores, 1500)
                try:
                    where = root / f"{(only or 'reference')}-hog{cores}-{i + 1}"
                    rc, statuses, secs = gate_run(where, overrides, only)
                finally:
                    for h in busy:
                        stop(h, grace=1)
                line = " ".join(f"{g}={s}" for g, s in statuses.items())
                print(
                    f"{name:<48} hog {cores}  run {i + 1}: exit {rc} in {secs:.0f}s  {line}",
                    flush=True,
                )
                for g, s in statuses.items():
                    if only is None or g == only:
                        counts[(name, cores, g)][s] += 1
    print()
    print(f"{'twin':<48} {'busy':>4}  {'gate':<11} PASS FAIL INVALID")
    for (name, cores, g), c in counts.items():
        print(f"{name:<48} {cores:>4}  {g:<11} {c['PASS']:>4} {c['FAIL']:>4} {c['INVALID']:>7}")


if __name__ == "__main__":
    main()
