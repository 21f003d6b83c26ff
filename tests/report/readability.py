"""What makes a figure unreadable, measured with matplotlib's own renderer: text over text, text or
legends off the canvas, a legend over data, text over another panel, two series that look alike.
``problems(fig)`` lists each as a sentence ([] when the figure is readable)."""

from __future__ import annotations

from itertools import combinations

from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import Bbox

SLACK = 1.0  # pixels two boxes may share (anti-aliasing, rounding)


def _shown(text) -> bool:
    return text is not None and text.get_visible() and bool(text.get_text().strip())


def _tick_labels(ax) -> list:
    """The tick labels matplotlib draws: visible, non-empty, at ticks inside the view."""
    labels = []
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        span = high - low
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            if not (
                low - 1e-9 * abs(span) - 1e-12 <= tick.get_loc() <= high + 1e-9 * abs(span) + 1e-12
            ):
                continue
            for label in (tick.label1, tick.label2):
                if _shown(label):
                    labels.append(label)
    return labels


def texts(fig) -> list[tuple[str, object, object]]:
    """Every drawn text of ``fig``: a name saying what it is, the Text, and the panel it belongs
    to (None: the figure's own, or a legend's)."""
    found = []
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        text = getattr(fig, name, None)
        if _shown(text):
            found.append((f"{name.strip('_')} {text.get_text()!r}", text, None))
    for text in fig.texts:
        if _shown(text) and all(text is not seen for _, seen, _ in found):
            found.append((f"figure text {text.get_text()!r}", text, None))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        where = f"panel {ax.get_title()!r}" if ax.get_title() else "a panel"
        for title in (ax.title, ax._left_title, ax._right_title):
            if _shown(title):
                found.append((f"title {title.get_text()!r}", title, ax))
        for label in (ax.xaxis.label, ax.yaxis.label):
            if _shown(label):
                found.append((f"axis label {label.get_text()!r} of {where}", label, ax))
        for label in _tick_labels(ax):
            found.append((f"tick label {label.get_text()!r} of {where}", label, ax))
    for legend in legends(fig):
        for text in [*legend.get_texts(), legend.get_title()]:
            if _shown(text):
                found.append((f"legend text {text.get_text()!r}", text, None))
    return found


def legends(fig) -> list:
    found = [legend for legend in fig.legends if legend.get_visible()]
    found += [ax.get_legend() for ax in fig.axes if ax.get_visible() and ax.get_legend()]
    return found


def _overlap(a: Bbox, b: Bbox) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > SLACK and min(a.y1, b.y1) - max(a.y0, b.y0) > SLACK


def _marker(handle) -> str:
    if isinstance(handle, Line2D):
        marker = handle.get_marker()
        return "none" if marker in (None, "", " ", "None", "none") else str(marker)
    if isinstance(handle, Patch):
        return f"hatch {handle.get_hatch()}"
    paths = getattr(handle, "get_paths", lambda: [])()
    return f"path {paths[0].vertices.round(3).tobytes().hex()}" if paths else "none"


def _colour(handle) -> str:
    if isinstance(handle, Line2D):
        return to_hex(handle.get_color())
    if isinstance(handle, Patch):
        return to_hex(handle.get_facecolor())
    colours = handle.get_facecolor() if hasattr(handle, "get_facecolor") else []
    if len(colours) == 0 and hasattr(handle, "get_edgecolor"):
        colours = handle.get_edgecolor()
    return to_hex(colours[0]) if len(colours) else "none"


def _drawn_series(ax) -> list[tuple[str, object]]:
    """The labelled series drawn in ``ax``, each with the artist that shows its colour and marker:
    lines, error bars (their data line), bars (their first bar), scatter collections."""
    found = [(line.get_label(), line) for line in ax.get_lines()]
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            found.append((container.get_label(), container.lines[0]))
        elif isinstance(container, BarContainer) and container.patches:
            found.append((container.get_label(), container.patches[0]))
    found += [(c.get_label(), c) for c in ax.collections if isinstance(c, PathCollection)]
    return [
        (str(label), artist)
        for label, artist in found
        if label and not str(label).startswith("_") and artist.get_visible()
    ]


def series_signatures(fig) -> dict[str, set[tuple[str, str]]]:
    """Each series' (colour, marker) by its label: as drawn in the panels, and as its legend entry
    shows it (a legend proxy may not pass off a series drawn in another style). An error bar's
    legend entry is drawn as its bar, so its data line speaks for it."""
    signatures: dict[str, set[tuple[str, str]]] = {}
    for ax in fig.axes:
        for label, artist in _drawn_series(ax):
            signatures.setdefault(label, set()).add((_colour(artist), _marker(artist)))
    for legend in legends(fig):
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if handle is not None and not isinstance(handle, LineCollection):
                signatures.setdefault(text.get_text(), set()).add(
                    (_colour(handle), _marker(handle))
                )
    return signatures


def problems(fig) -> list[str]:
    """Every readability problem of ``fig``, as sentences."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    found = []
    drawn_texts = texts(fig)
    boxes = [(name, text.get_window_extent(renderer)) for name, text, _ in drawn_texts]
    for (name_a, a), (name_b, b) in combinations(boxes, 2):
        if _overlap(a, b):
            found.append(f"{name_a} overlaps {name_b}")
    for name, box in boxes:
        if (
            box.x0 < -SLACK
            or box.y0 < -SLACK
            or box.x1 > canvas.x1 + SLACK
            or box.y1 > canvas.y1 + SLACK
        ):
            found.append(f"{name} runs off the canvas")
    data_areas = [
        (f"panel {ax.get_title()!r}", ax, ax.get_window_extent(renderer))
        for ax in fig.axes
        if ax.get_visible()
    ]
    for legend in legends(fig):
        box = legend.get_window_extent(renderer)
        if (
            box.x0 < -SLACK
            or box.y0 < -SLACK
            or box.x1 > canvas.x1 + SLACK
            or box.y1 > canvas.y1 + SLACK
        ):
            found.append("a legend runs off the canvas")
        for name, _, area in data_areas:
            if _overlap(box, area):
                found.append(f"a legend lies over the data of {name}")
    for (name, _, owner), (_, box) in zip(drawn_texts, boxes):
        for area_name, ax, area in data_areas:
            if owner is not None and owner is not ax and _overlap(box, area):
                found.append(f"{name} lies over the data of {area_name}")
    signatures = series_signatures(fig)
    for label, styles in signatures.items():
        if len(styles) > 1:
            found.append(f"series {label!r} is drawn in {len(styles)} styles: {sorted(styles)}")
    owners: dict[tuple[str, str], str] = {}
    for label, styles in signatures.items():
        for signature in styles:
            if signature in owners and owners[signature] != label:
                found.append(
                    f"series {owners[signature]!r} and {label!r} share colour and marker {signature}"
                )
            owners.setdefault(signature, label)
    return found
