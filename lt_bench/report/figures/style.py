"""The one look every report figure shares, and that holds at 14 series and more.

- Each row label gets one :class:`SeriesStyle` (colour, marker, line style) for the whole report:
  colours from Okabe & Ito's colour-blind-safe palette (8), markers from a list of 7, so the first
  56 rows never share both a colour and a marker; the same row looks the same in every figure.
- Legends sit outside the data: one figure-level legend under the panels, in as many columns as
  fit the figure's width (:func:`legend_below`).
- More than :data:`MAX_SERIES` rows on one axis become small multiples (:func:`split_rows`): each
  panel draws its rows in colour and the others as thin grey context.
- Accuracies are shown in %, integer quantities (epochs, class index) get integer ticks, class
  sizes a log axis with plain numbers, spreads over seeds a band or error bars.

Importing this module imports no matplotlib: it is loaded inside the functions that draw, so the
report's tables and its list of figure names stay free of it.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps

import numpy as np
import pandas as pd

# Okabe & Ito (2008), "Color Universal Design": blue, vermillion, bluish green, reddish purple,
# orange, sky blue, black, yellow (last: the faintest on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")  # 7 and 8 are coprime: 56 distinct pairs
LINESTYLES = ("-", "--", ":")  # one per pass through the palette
CONTEXT = "#C8C8C8"  # the other panels' rows, behind a small multiple's own
MAX_SERIES = 6  # rows one axis carries before the figure splits into small multiples
GROUP_STYLES = {  # shot groups: fixed, so "few" is always the same colour
    "many": ("#0072B2", "o"),
    "medium": ("#E69F00", "s"),
    "few": ("#D55E00", "^"),
}
METHOD_RANK = {"none": 0, "center": 1, "prototype": 2, "etf": 3, "sar": 9}  # baselines first
DPI = 150
PANEL = (3.3, 2.5)  # inches per panel
LEGEND_WRAP = 46  # characters per legend line
TICK_WRAP = 38  # characters per category tick label line

RC = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#E6E6E6",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "errorbar.capsize": 2.5,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text
    "svg.hashsalt": "lt-bench",
    "axes.prop_cycle": None,  # set in styled(): the palette
    "figure.constrained_layout.h_pad": 0.06,
    "figure.constrained_layout.w_pad": 0.06,
}


@dataclass(frozen=True)
class SeriesStyle:
    """How one row is drawn in every figure of a report."""

    colour: str
    marker: str
    linestyle: str

    def line(self, markevery=None) -> dict:
        """Keyword arguments for ``ax.plot`` / ``ax.errorbar``."""
        kwargs = {"color": self.colour, "marker": self.marker, "linestyle": self.linestyle}
        if markevery is not None:
            kwargs["markevery"] = markevery
        return kwargs

    def point(self) -> dict:
        """Keyword arguments for a marker without a line."""
        return {"color": self.colour, "marker": self.marker, "linestyle": "none"}


def series_style(index: int) -> SeriesStyle:
    """The ``index``-th style: colour and marker both step, so neighbours differ in both."""
    return SeriesStyle(
        PALETTE[index % len(PALETTE)],
        MARKERS[index % len(MARKERS)],
        LINESTYLES[(index // len(PALETTE)) % len(LINESTYLES)],
    )


def row_order(done: pd.DataFrame) -> list[str]:
    """The row labels in report order: baselines first, SAR last, by the method each row runs
    (its ``method.name``, never the label's text), then by base loss."""
    rows = done.drop_duplicates("label")
    method = rows.get("method.name", pd.Series("", index=rows.index)).astype(str)
    loss = rows.get("loss.name", pd.Series("", index=rows.index)).astype(str)
    keys = {
        label: (METHOD_RANK.get(name, 5), name, base != "ce", base, label)
        for label, name, base in zip(rows.label, method, loss)
    }
    return sorted(keys, key=keys.get)


def row_styles(done: pd.DataFrame) -> dict[str, SeriesStyle]:
    """One style per row label of the report, in :func:`row_order`."""
    return {label: series_style(i) for i, label in enumerate(row_order(done))}


def row_family(done: pd.DataFrame) -> dict[str, str]:
    """Each row's method (``method.name``): the unit small multiples keep together."""
    rows = done.drop_duplicates("label")
    if "method.name" not in rows:
        return {label: "" for label in rows.label}
    return dict(zip(rows.label, rows["method.name"].astype(str)))


def split_rows(
    rows: Sequence[str], family: dict[str, str], limit: int = MAX_SERIES
) -> list[list[str]]:
    """``rows`` in panels of at most ``limit``: one panel when they fit, else consecutive methods
    packed together (a method with more rows than ``limit`` split in even parts)."""
    rows = list(rows)
    if len(rows) <= limit:
        return [rows]
    blocks: list[list[str]] = []
    for row in rows:
        if blocks and family.get(row) == family.get(blocks[-1][0]):
            blocks[-1].append(row)
        else:
            blocks.append([row])
    pieces = []
    for block in blocks:
        parts = math.ceil(len(block) / limit)
        size = math.ceil(len(block) / parts)
        pieces += [block[i : i + size] for i in range(0, len(block), size)]
    panels: list[list[str]] = []
    for piece in pieces:
        if panels and len(panels[-1]) + len(piece) <= limit:
            panels[-1] += piece
        else:
            panels.append(list(piece))
    return panels


def wrap(text: str, width: int) -> str:
    """``text`` broken at spaces into lines of at most ``width`` characters (where it can)."""
    lines = [
        wrapped
        for line in str(text).split("\n")  # a line break the caller made stays
        for wrapped in textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
    ]
    return "\n".join(lines) or str(text)


# ----------------------------------------------------------------------------- drawing


def styled(draw):
    """Run a figure function under the report's rc settings (font sizes, grid, palette)."""

    @wraps(draw)
    def wrapper(*args, **kwargs):
        with report_rc():
            return draw(*args, **kwargs)

    return wrapper


@contextmanager
def report_rc():
    """A context in which matplotlib draws with the report's rc settings and palette."""
    import matplotlib
    from cycler import cycler

    settings = {**RC, "axes.prop_cycle": cycler(color=list(PALETTE))}
    with matplotlib.rc_context(settings):
        yield


def new_figure(rows: int, cols: int, panel: tuple[float, float] = PANEL, **subplots):
    """A constrained-layout Figure (no pyplot: nothing global to close) and its axes, row-major.
    ``rows`` x ``cols`` panels of ``panel`` inches each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(cols * panel[0], rows * panel[1]), layout="constrained", dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, **subplots)
    return fig, axes


def panel_grid(panels_per_group: Sequence[int], columns: int = 3) -> tuple[int, int, list]:
    """Where each group's panels go: one grid row per group (a data set's small multiples side by
    side); when every group has one panel, the groups fill rows of ``columns`` instead. Returns
    the grid's rows and columns and, per group, the (row, column) of each of its panels."""
    if max(panels_per_group) == 1:
        cols = min(len(panels_per_group), columns)
        places = [[divmod(i, cols)] for i in range(len(panels_per_group))]
        return -(-len(panels_per_group) // cols), cols, places
    places = [[(i, j) for j in range(n)] for i, n in enumerate(panels_per_group)]
    return len(panels_per_group), max(panels_per_group), places


def hide_empty(axes) -> None:
    """Hide the grid's panels nothing was drawn on."""
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_visible(False)


def hide_unused(axes: Iterable) -> None:
    """Hide the grid's spare panels."""
    for ax in axes:
        ax.set_visible(False)


def _fit_text(text, width_px: float, renderer) -> None:
    """Re-wrap ``text`` (a title) until it is no wider than ``width_px``."""
    content = text.get_text().replace("\n", " ")  # titles: re-wrapped whole
    chars = len(content)
    while chars > 12 and text.get_window_extent(renderer).width > width_px:
        chars = int(chars * 0.85)
        text.set_text(wrap(content, chars))


def finish(fig, entries: dict | None = None, markerscale: float = 1.0) -> None:
    """Titles and x labels wrapped to their panel's (the suptitle to the figure's) width, then the
    legend of ``entries`` (label -> handle) under the panels."""
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()  # the layout: each panel's final width
    for ax in fig.axes:
        if ax.get_visible():
            width = ax.get_position().width * fig.bbox.width
            for text in (ax.title, ax.xaxis.label):
                if text.get_text():
                    _fit_text(text, 0.98 * width, renderer)
    for name in ("_suptitle", "_supxlabel"):
        text = getattr(fig, name, None)
        if text is not None and text.get_text():
            _fit_text(text, 0.96 * fig.bbox.width, renderer)
    if entries:
        legend_below(fig, entries, markerscale)


def legend_below(fig, entries: dict, markerscale: float = 1.0) -> None:
    """One legend under all panels, ``entries`` (label -> handle) in order, in as many columns as
    fit the figure's width (then evened out, so the last row is not one entry); the figure grows
    by the legend's height so the panels keep theirs."""
    if not entries:
        return
    labels = [wrap(label, LEGEND_WRAP) for label in entries]
    handles = list(entries.values())
    room = 0.97 * fig.bbox.width
    renderer = fig.canvas.get_renderer()

    def place(columns: int):
        return fig.legend(
            handles, labels, loc="outside lower center", ncols=columns, frameon=False,
            handlelength=2.4, columnspacing=1.4, markerscale=markerscale,
        )  # fmt: skip

    columns = len(labels)
    legend = place(columns)
    while legend.get_window_extent(renderer).width > room and columns > 1:
        legend.remove()
        columns -= 1
        legend = place(columns)
    even = math.ceil(len(labels) / math.ceil(len(labels) / columns))
    if even != columns:
        legend.remove()
        legend = place(even)
    fig.set_figheight(
        fig.get_figheight() + legend.get_window_extent(renderer).height / fig.dpi + 0.1
    )


def context_line(ax, x, y) -> None:
    """Another panel's row, drawn thin and grey behind this panel's rows (no legend entry)."""
    ax.plot(x, y, color=CONTEXT, linewidth=0.8, zorder=1, label="_context")


def band(ax, x, mean, std, style: SeriesStyle) -> None:
    """Mean ± std over seeds as a translucent band (none where std is unknown: one seed)."""
    std = np.asarray(std, dtype=float)
    if np.isnan(std).all():
        return
    std = np.nan_to_num(std)
    mean = np.asarray(mean, dtype=float)
    ax.fill_between(
        x, mean - std, mean + std, color=style.colour, alpha=0.15, linewidth=0, zorder=2
    )


def mean_curves(ax, curves: dict, shown, styles: dict, entries: dict, x) -> None:
    """The rows in ``shown``: mean over seeds with a ± std band, each in its style (its line kept
    in ``entries`` for the legend); the other rows of ``curves`` as grey context lines. ``curves``
    maps a row to its frame with ``mean`` and ``std``; ``x(frame)`` gives the x values."""
    for label, curve in curves.items():
        if label not in shown:
            context_line(ax, x(curve), curve["mean"])
    for label in shown:
        curve, series = curves[label], styles[label]
        band(ax, x(curve), curve["mean"], curve["std"], series)
        (line,) = ax.plot(x(curve), curve["mean"], **series.line(), zorder=3, label=label)
        entries.setdefault(label, line)


def percent_axis(
    ax, values: Iterable[float], axis: str = "y", floor: float = 0.0, ceiling: float = 100.0
) -> None:
    """Limits for percentages: the data with a margin, at least 6 points wide (a flat line at 0 is
    not drawn on a -0.04..0.04 axis), kept inside [floor - margin, ceiling + margin]."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if values.size == 0:
        return
    low, high = float(values.min()), float(values.max())
    if high - low < 6.0:
        middle = (low + high) / 2
        low, high = middle - 3.0, middle + 3.0
        if low < floor:
            low, high = floor, floor + 6.0
        if high > ceiling:
            low, high = ceiling - 6.0, ceiling
    margin = 0.06 * (high - low)
    limits = (max(floor - 2.0, low - margin), min(ceiling + 2.0, high + margin))
    (ax.set_ylim if axis == "y" else ax.set_xlim)(*limits)


def integer_axis(ax, axis: str = "x", nbins: int | str = "auto") -> None:
    """Whole-number ticks (epochs, class index)."""
    from matplotlib.ticker import MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(integer=True, nbins=nbins))


def log_count_axis(ax, values: Iterable[float], axis: str = "x") -> None:
    """A log axis (class sizes, losses) with plain-number ticks: powers of ten, or 1-2-5 (then
    1-2-3-5, then every digit) steps where fewer than three would fall within the data; no minor
    labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    values = np.asarray([v for v in values if v and np.isfinite(v) and v > 0], dtype=float)
    subs: tuple = (1.0,)
    if values.size:
        low, high = values.min(), values.max()
        for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), tuple(range(1, 10))):
            decades = np.arange(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            ticks = np.outer(10.0**decades, subs).ravel()
            if ((ticks >= low * 0.999) & (ticks <= high * 1.001)).sum() >= 3:
                break
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def category_axis(ax, labels: Sequence[str]) -> list[float]:
    """Rows as categories on the y axis, the first at the top; returns each row's y."""
    n = len(labels)
    ys = [float(n - 1 - i) for i in range(n)]
    ax.set_yticks(ys, [wrap(label, TICK_WRAP) for label in labels])
    ax.set_ylim(-0.6, n - 0.4)
    ax.grid(False, axis="y")
    ax.tick_params(axis="y", length=0)
    return ys


def category_height(n: int, lines: int = 1) -> float:
    """Inches for ``n`` category rows (tick labels of ``lines`` lines) and the axis under them."""
    return max(1.9, (0.3 + 0.12 * (lines - 1)) * n + 0.9)


# ----------------------------------------------------------------------------- saving


def save_png_and_pdf(fig, out_dir, stem: str) -> list[str]:
    """``<stem>.pdf`` and ``<stem>.png`` in ``out_dir``, each written atomically; PDFs carry no
    creation date, so the same figure gives the same bytes."""
    import os

    from lt_bench.atomic import atomic_path

    written = []
    for suffix in ("png", "pdf"):
        path = os.path.join(os.fspath(out_dir), f"{stem}.{suffix}")
        metadata = {"CreationDate": None} if suffix == "pdf" else {"Software": None}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix, dpi=DPI, metadata=metadata)
        written.append(f"{stem}.{suffix}")
    return written
