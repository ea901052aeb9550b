"""Phases and events on the report's time axes, laid out so no two labels overlap.

Every plot has the same geometry and time range, so the layout is computed once (in pixels,
with matplotlib's own text metrics) and drawn on each plot: phases are shaded bands named above
the axes (a gate session's gate names on a second row), events are lines with numbered tags in
one row above the axes; events too close for their own tag share one ("3–5"). The numbers are
the rows of the event list below the first plot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties

from loadgate.report.events import SEVERITY, Kind, Marker, Phase

TAG_PT = 9  # font size of an event's number
PHASE_PT = 9
GAP_PX = 4.0  # least space between two labels
BAND_COLORS = ("#e6edf6", "#f6efe1")
STYLE: dict[str, dict] = {
    "fault": {"color": "#c0392b", "linestyle": "-", "linewidth": 1.8},
    "readiness": {"color": "#b9770e", "linestyle": "--", "linewidth": 1.2},
    "scaling": {"color": "#2471a3", "linestyle": "--", "linewidth": 1.2},
    "step": {"color": "#6c7a89", "linestyle": ":", "linewidth": 1.2},
}
Width = Callable[[str], float]


def text_width(size_pt: float, dpi: float, bold: bool = False) -> Width:
    """Width in pixels of a text as matplotlib renders it at `dpi`."""
    renderer = RendererAgg(10, 10, dpi)
    prop = FontProperties(size=size_pt, weight="bold" if bold else "normal")
    return lambda s: renderer.get_text_width_height_descent(s, prop, ismath=False)[0]


def tag_text(first: int, last: int) -> str:
    """Marker numbers are 1-based."""
    return str(first + 1) if first == last else f"{first + 1}\u2013{last + 1}"


@dataclass(frozen=True)
class Tag:
    first: int  # index of the first marker it numbers
    last: int
    x: float  # left edge, px from the axes' left
    kind: Kind  # the most severe kind among its markers

    @property
    def text(self) -> str:
        return tag_text(self.first, self.last)


def tags(xs: list[float], kinds: list[Kind], width: Width, axis_px: float, pad: float) -> list[Tag]:
    """One tag per run of markers at pixel positions `xs` (sorted): a marker that would fall under
    the previous tag joins it, and a tag is kept inside [0, axis_px]. `pad`: a tag's width beyond
    its text (the box)."""

    def w(a: int, b: int) -> float:
        return width(tag_text(a, b)) + pad

    out: list[tuple[int, int, float]] = []
    for i, x in enumerate(xs):
        if out and x < out[-1][2] + w(out[-1][0], out[-1][1]) + GAP_PX:
            out[-1] = (out[-1][0], i, out[-1][2])
        else:
            out.append((i, i, x))
    placed: list[tuple[int, int, float]] = []
    for a, b, x in out:
        x = max(0.0, min(x, axis_px - w(a, b)))
        while placed and x < placed[-1][2] + w(placed[-1][0], placed[-1][1]) + GAP_PX:
            a, _, px = placed.pop()
            x = max(0.0, min(px, axis_px - w(a, b)))
        placed.append((a, b, x))
    return [Tag(a, b, x, min(kinds[a : b + 1], key=lambda k: SEVERITY[k])) for a, b, x in placed]


@dataclass(frozen=True)
class Label:
    text: str
    center: float  # data x (s since start)
    row: int  # 0: phases, 1: gates


def phase_labels(phases: list[Phase], t0: float, px_per_s: float, width: Width) -> list[Label]:
    """Phase names centred in their bands where they fit; for a gate session (`gate/phase`),
    the phase part on row 0 and each gate's name over its phases on row 1."""
    out: list[Label] = []
    gates: dict[str, list[float]] = {}
    for name, a, b in phases:
        gate, _, phase = name.rpartition("/")
        if gate:
            span = gates.setdefault(gate, [a, b])
            span[0], span[1] = min(span[0], a), max(span[1], b)
        if width(phase) + GAP_PX <= (b - a) * px_per_s:
            out.append(Label(phase, (a + b) / 2 - t0, 0))
    for gate, (a, b) in gates.items():
        if width(gate) + GAP_PX <= (b - a) * px_per_s:
            out.append(Label(gate, (a + b) / 2 - t0, 1))
    return out


@dataclass
class Layout:
    """What every plot draws, in seconds since t0 (tags in px from the axes' left)."""

    duration: float
    phases: list[tuple[float, float]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    t0: float = 0.0
    px_per_s: float = 1.0


def layout(
    t0: float, t1: float, phases: list[Phase], markers: list[Marker], axis_px: float, dpi: float
) -> Layout:
    duration = max(t1 - t0, 1e-6)
    px_per_s = axis_px / duration
    tw = text_width(TAG_PT, dpi, bold=True)
    xs = [(m.time - t0) * px_per_s for m in markers]
    return Layout(
        duration=duration,
        phases=[(a - t0, b - t0) for _, a, b in phases],
        labels=phase_labels(phases, t0, px_per_s, text_width(PHASE_PT, dpi)),
        markers=markers,
        tags=tags(xs, [m.kind for m in markers], tw, axis_px, pad=TAG_PT * dpi / 72 * 0.8),
        t0=t0,
        px_per_s=px_per_s,
    )


def draw(ax, lay: Layout) -> list:
    """Bands, lines, phase names and event tags on `ax`; returns the label artists (tests)."""
    ax.set_xlim(0, lay.duration)
    for i, (a, b) in enumerate(lay.phases):
        ax.axvspan(a, b, color=BAND_COLORS[i % 2], zorder=0, linewidth=0)
        ax.axvline(a, color="#c8ccd2", linewidth=0.8, zorder=0.5)
    for m in lay.markers:
        style = STYLE[m.kind]
        x = m.time - lay.t0
        if m.end is not None:
            ax.axvspan(
                x, m.end - lay.t0, facecolor=style["color"], alpha=0.10, zorder=0.6, linewidth=0
            )
        ax.axvline(x, zorder=3, **style)
    artists = []
    rows = {0: 18, 1: 32}  # points above the axes (the tag row is below them)
    for lab in lay.labels:
        artists.append(
            ax.annotate(
                lab.text,
                xy=(lab.center, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, rows[lab.row]),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=PHASE_PT,
                color="#444" if lab.row == 0 else "#222",
                fontweight="normal" if lab.row == 0 else "bold",
                annotation_clip=False,
            )
        )
    for tag in lay.tags:
        artists.append(
            ax.annotate(
                tag.text,
                xy=(tag.x / lay.px_per_s, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                ha="left",
                va="bottom",
                fontsize=TAG_PT,
                fontweight="bold",
                color="white",
                bbox={
                    "boxstyle": "round,pad=0.25",
                    "facecolor": STYLE[tag.kind]["color"],
                    "edgecolor": "none",
                },
                annotation_clip=False,
            )
        )
    return artists
