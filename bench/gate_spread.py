"""The spread of every gate figure over reference runs, its threshold, how far the closest run
sits from it, and what each broken twin measured — the table thresholds are set from.

    .venv/bin/python bench/gate_spread.py --runs 3 [--broken]      # run the gates, then tabulate
    .venv/bin/python bench/gate_spread.py --from reports/gate-A reports/gate-B ...  # tabulate

A threshold is not done when the reference's closest figure, or a broken twin's figure, is
within 10 % of it (docs/gate.md, "Measurements").
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from loadgate.gate import catalogue
from loadgate.report.summary import Summary, read_summary

ROOT = Path(__file__).resolve().parents[1]


def run_gate(report_dir: Path, overrides: tuple[str, ...] = (), only: str | None = None) -> Path:
    cmd = [sys.executable, "-m", "loadgate.cli", "gate", "--report-dir", str(report_dir)]
    for o in overrides:
        cmd += ["--twin-override", o]
    if only:
        cmd += ["--", "-k", catalogue.get(only).test_name]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return max(report_dir.glob("gate-*"), key=lambda p: p.stat().st_mtime)


def margin(value: float, threshold: float, direction: str) -> float:
    """How far inside its threshold a figure is, as a share of the threshold (negative: out)."""
    if threshold == 0:
        return math.inf if value == 0 else -math.inf
    gap = (threshold - value) if direction == "<=" else (value - threshold)
    return gap / abs(threshold)


def table(refs: list[Summary], broken: dict[str, Summary]) -> list[str]:
    out = [
        f"{'gate':<10} {'figure':<24} {'reference min..max':>22} {'threshold':>12} "
        f"{'closest margin':>14} {'broken twin':>12}"
    ]
    for g in catalogue.GATES:
        for f in g.figures:
            vals = [
                v.value for s in refs for v in s.gates if (v.gate, v.figure) == (g.name, f.name)
            ]
            thr = [
                v.threshold for s in refs for v in s.gates if (v.gate, v.figure) == (g.name, f.name)
            ]
            got = [x for x in vals if x is not None]
            spread = f"{min(got):.4g}..{max(got):.4g}" if got else "not measured"
            t = thr[0] if thr else math.nan
            m = min((margin(x, t, f.direction) for x in got), default=math.nan)
            b = broken.get(g.name)
            bv = next((v.value for v in b.gates if v.figure == f.name), None) if b else None
            bs = "-" if b is None else ("n/m" if bv is None else f"{bv:.4g}")
            out.append(
                f"{g.name:<10} {f.name:<24} {spread:>22} {f.direction} {t:>9.4g} "
                f"{m * 100:>13.0f}% {bs:>12}"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--broken", action="store_true", help="also run each gate's broken twin")
    ap.add_argument("--from", dest="dirs", nargs="*", help="reference run dirs to tabulate")
    args = ap.parse_args()
    broken: dict[str, Summary] = {}
    if args.dirs:
        refs = [read_summary(d) for d in args.dirs]
    else:
        with tempfile.TemporaryDirectory(prefix="lg-spread-") as d:
            refs = [read_summary(run_gate(Path(d) / f"ref-{i}")) for i in range(args.runs)]
            if args.broken:
                for g in catalogue.GATES:
                    broken[g.name] = read_summary(run_gate(Path(d) / g.name, g.broken, g.name))
    print("\n".join(table(refs, broken)))


if __name__ == "__main__":
    main()
