"""The face every report figure has, and the registry ``write_report`` iterates.

A figure is one function ``make(done, inputs, context=None) -> matplotlib Figure``, registered with
``@figure("<stem>", position=...)``: the report saves it as ``<stem>.png`` and ``<stem>.pdf``, in the
order of ``position``. A figure with nothing to show raises :class:`NothingToShow` with the reason,
and the report lists it under "Figures left out"; a figure drawn without part of what it could show
(rows without feature arrays, an interval that would mean nothing) says so with
:meth:`FigureContext.note`. The functions return Figures, so a notebook composes them freely.
Nothing here imports matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from lt_bench.registry import Registry


class NothingToShow(Exception):
    """A figure with nothing to show; ``str(err)`` says why (the report lists it)."""


@dataclass
class FigureInputs:
    """What the figures read from the run folders, beside the runs DataFrame."""

    per_class: dict  # run folder -> its per-class table
    histories: dict  # run folder -> its metrics, epoch by epoch
    focus: str  # the data set @ ratio with the largest ratio: t-SNE and cosine heatmaps
    features: dict  # row label -> (test features, labels) of its lowest-seed run on ``focus``


@dataclass
class FigureContext:
    """What every figure of one report shares: each row's style, the baseline, whether to draw
    t-SNE, and the notes the figures leave (what they left out, and why)."""

    styles: dict  # row label -> style.SeriesStyle, the same in every figure
    family: dict  # row label -> its method: rows of one method share a small multiple
    baseline: str | None = None
    tsne: bool = False
    notes: list[str] = field(default_factory=list)

    def note(self, stem: str, text: str) -> None:
        """Record what figure ``stem`` left out, and why (a line of report.md)."""
        self.notes.append(f"{stem} {text}")

    @classmethod
    def of(cls, done: pd.DataFrame, baseline: str | None = None, tsne: bool = False):
        """The context of the done runs ``done``: one style per row label, shared by every
        figure drawn with it."""
        from lt_bench.report.figures.style import row_family, row_styles

        return cls(row_styles(done), row_family(done), baseline, tsne)


@dataclass(frozen=True)
class ReportFigure:
    """One registered figure: its file stem, its place in the report and its maker."""

    name: str
    position: int
    make: Callable[..., Any]  # (done, inputs, context) -> Figure; raises NothingToShow


FIGURES: Registry[ReportFigure] = Registry("figure")


def figure(name: str, position: int):
    """Register ``make(done, inputs, context)`` as the figure saved to ``<name>.png`` and
    ``<name>.pdf``. Returns ``make`` unchanged."""

    def decorator(make):
        FIGURES.register(name)(ReportFigure(name, position, make))
        return make

    return decorator


def registered_figures() -> list[ReportFigure]:
    """Every registered figure, in report order."""
    return sorted((FIGURES.get(name) for name in FIGURES), key=lambda f: (f.position, f.name))


def context_for(done: pd.DataFrame, context: FigureContext | None) -> FigureContext:
    """``context``, or one made from ``done`` (a figure drawn on its own, in a notebook)."""
    return context if context is not None else FigureContext.of(done)
