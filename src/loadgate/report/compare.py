"""Side-by-side comparison of two runs' summaries: each gate's figure in A and B and the change."""

from __future__ import annotations

from dataclasses import dataclass

from loadgate.report.summary import Summary


@dataclass(frozen=True)
class Row:
    name: str  # "gate/figure" or "generator/<field>" or "figure/<name>"
    a: float | None
    b: float | None
    unit: str = ""
    verdict_a: str = ""  # PASS / FAIL / "" (not a gate)
    verdict_b: str = ""

    @property
    def change(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def change_pct(self) -> float | None:
        if self.change is None or not self.a:
            return None
        return 100.0 * self.change / abs(self.a)


def _gate_rows(a: Summary, b: Summary) -> list[Row]:
    ga = {(g.gate, g.figure): g for g in a.gates}
    gb = {(g.gate, g.figure): g for g in b.gates}
    keys = list(ga) + [k for k in gb if k not in ga]
    rows = []
    for k in keys:
        x, y = ga.get(k), gb.get(k)
        rows.append(
            Row(
                name=f"{k[0]}/{k[1]}",
                a=x.value if x else None,
                b=y.value if y else None,
                unit=(x or y).unit,
                verdict_a=("PASS" if x.passed else "FAIL") if x else "absent",
                verdict_b=("PASS" if y.passed else "FAIL") if y else "absent",
            )
        )
    return rows


GENERATOR_FIELDS = [
    ("achieved_rate", "/s"),
    ("lag_p50_ms", "ms"),
    ("lag_p99_ms", "ms"),
    ("dropped", ""),
]


def compare(a: Summary, b: Summary) -> list[Row]:
    rows = _gate_rows(a, b)
    for f, unit in GENERATOR_FIELDS:
        va = getattr(a.generator, f) if a.generator else None
        vb = getattr(b.generator, f) if b.generator else None
        if va is not None or vb is not None:
            rows.append(Row(f"generator/{f}", va, vb, unit))
    for k in list(a.figures) + [k for k in b.figures if k not in a.figures]:
        rows.append(Row(f"figure/{k}", a.figures.get(k), b.figures.get(k)))
    return rows


def _num(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.4g}"


def format_table(a: Summary, b: Summary, rows: list[Row]) -> str:
    head = ["figure", f"A {a.run_id}", f"B {b.run_id}", "change", "change %", "verdict A -> B"]
    body = [
        [
            r.name + (f" [{r.unit}]" if r.unit else ""),
            _num(r.a),
            _num(r.b),
            ("+" if (r.change or 0) > 0 else "") + _num(r.change),
            "" if r.change_pct is None else f"{r.change_pct:+.1f}%",
            f"{r.verdict_a} -> {r.verdict_b}" if r.verdict_a else "",
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])] + [line(c) for c in body]
    return "\n".join(out)
