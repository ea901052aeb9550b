"""Phase names and event numbers on the report's plots never overlap, stay on the canvas, and
every event keeps its number; the figures are full width with legible text."""

import base64
import io
import itertools

import matplotlib.image as mpimg
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgate.report import markers, plots
from loadgate.report.events import Marker

T0 = 1.7e9
KINDS = ["fault", "readiness", "scaling", "step"]
WIDTH = markers.text_width(markers.TAG_PT, plots.DPI, bold=True)
PAD = 10.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, plots.AXIS_PX), max_size=60), st.randoms())
def test_tags_cover_every_marker_in_order_without_overlap(xs, rnd):
    xs = sorted(xs)
    kinds = [rnd.choice(KINDS) for _ in xs]
    tags = markers.tags(xs, kinds, WIDTH, plots.AXIS_PX, PAD)
    assert [i for t in tags for i in range(t.first, t.last + 1)] == list(range(len(xs)))
    for a, b in itertools.pairwise(tags):
        assert a.x + WIDTH(a.text) + PAD + markers.GAP_PX <= b.x + 1e-6
    for t in tags:
        assert t.x >= 0 and t.x + WIDTH(t.text) + PAD <= plots.AXIS_PX + 1e-6
        # a tag sits at (or left of, near the right edge) its first marker
        assert t.x <= xs[t.first] + 1e-6
        # its colour is the most severe of its markers
        assert t.kind == min(kinds[t.first : t.last + 1], key=markers.SEVERITY.get)


def dense_gate_session():
    """Five gates' phases (some too short to name) and events in clusters."""
    phases, t = [], T0
    for gate, parts in (
        ("balance", [("warmup", 4), ("steady", 30)]),
        ("readiness", [("warmup", 3), ("steady", 17)]),
        ("fail_fast", [("steady", 5), ("flood", 8), ("cooldown", 10)]),
        ("pod_kill", [("steady", 8), ("kill", 4), ("recovery", 12)]),
        ("scale_up", [("warmup", 3), ("sustained", 30), ("cooldown", 4)]),
    ):
        for name, d in parts:
            phases.append((f"{gate}/{name}", t, t + d))
            t += d
        t += 12  # settle between gates
    times = [49.2, 54.8, 85.1, 85.3, 87.7, 88.1, 88.4, 105.6, 110.4, 123.1, 123.13, 126.7]
    times += [163.7, 165.3, 181.8, 181.84, 188.0, 188.02, 189.0, 189.1, 189.2]
    marks = [Marker(T0 + x, KINDS[i % 4], "e") for i, x in enumerate(times)]
    marks.append(Marker(T0 + 80.0, "fault", "flood", end=T0 + 88.0))
    marks.sort(key=lambda m: m.time)
    return phases, marks, t


def extents(fig, ax):
    """Window boxes of the phase names and of the event tags (their boxes) drawn on ax."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    tags, names = [], []
    for text in ax.texts:
        patch = text.get_bbox_patch()
        if patch is not None:
            tags.append((text.get_text(), patch.get_window_extent(r)))
        else:
            names.append((text.get_text(), text.get_window_extent(r)))
    return tags, names


def test_drawn_labels_do_not_overlap_and_stay_on_the_canvas():
    phases, marks, t1 = dense_gate_session()
    lay = markers.layout(T0, t1, phases, marks, plots.AXIS_PX, plots.DPI)
    fig, ax = plots.frame(lay, "title", "ms")
    tags, names = extents(fig, ax)
    assert len(tags) >= 8  # the clusters share tags, the rest have their own
    numbered = []
    for text, _ in tags:
        a, _, b = text.partition("\u2013")
        numbered += range(int(a), int(b or a) + 1)
    assert numbered == list(range(1, len(marks) + 1))
    assert {"balance", "fail_fast", "pod_kill", "scale_up", "steady", "sustained"} <= {
        n for n, _ in names
    }
    boxes = [b for _, b in tags + names]
    for (na, a), (nb, b) in itertools.combinations(tags + names, 2):
        assert not a.overlaps(b), f"{na!r} overlaps {nb!r}"
    canvas = fig.bbox
    for b in boxes:
        assert canvas.x0 <= b.x0 and b.x1 <= canvas.x1 and b.y1 <= canvas.y1
    # the labels are above the axes, never over the data
    assert all(b.y0 >= ax.get_window_extent(fig.canvas.get_renderer()).y1 for b in boxes)


def test_every_figure_is_full_width_with_legible_legends():
    phases, marks, t1 = dense_gate_session()
    lay = markers.layout(T0, t1, phases, marks, plots.AXIS_PX, plots.DPI)
    fig, ax = plots.frame(lay, "title", "calls")
    for i in range(14):  # a gate session's pods
        ax.plot([0, 1], [i, i], label=f"pod{i:02d}")
    plots.legend(ax, title="modelserver-\u2026")
    texts = ax.get_legend().get_texts()
    assert min(t.get_fontsize() for t in texts) >= plots.LEGEND_PT - 1
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert leg.x1 <= fig.bbox.x1 and leg.x0 >= ax.get_window_extent().x1  # beside, not over
    png = mpimg.imread(io.BytesIO(base64.b64decode(plots.fixed_png(fig))), format="png")
    assert png.shape[:2] == (390, 1360)
    assert ax.get_window_extent().width == plots.AXIS_PX


def test_latency_lines_bridge_sparse_windows_but_not_pauses():
    nan = float("nan")
    s = pd.Series([nan, 1, nan, 3, nan, nan, nan, 7, nan, nan, 10, nan])
    got = plots.bridged(s).tolist()
    assert got[1:4] == [1, 2, 3] and got[7:11] == [7, 8, 9, 10]
    assert all(x != x for x in got[4:7] + [got[0], got[-1]])  # a pause, and the run's ends
