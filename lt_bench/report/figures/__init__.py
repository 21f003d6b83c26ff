"""Report figures, one file each: a function ``make(done, inputs, context=None) -> Figure``
registered with ``@figure("<stem>", position=...)`` (see :mod:`.face`), drawn in the one style of
:mod:`.style`. Every module of this package is imported here, so a new figure is one new file:
``write_report`` and the tests that sweep :data:`FIGURES` pick it up. Importing this package
imports no matplotlib; drawing does."""

from __future__ import annotations

import importlib
import pkgutil

from lt_bench.report.figures.face import (
    FIGURES,
    FigureContext,
    FigureInputs,
    NothingToShow,
    ReportFigure,
    figure,
    registered_figures,
)
from lt_bench.report.figures.features import class_mean_cosine, tsne
from lt_bench.report.figures.per_class import per_class_accuracy
from lt_bench.report.figures.ratio import accuracy_vs_ratio
from lt_bench.report.figures.rliable import (
    interval_estimates,
    performance_profile,
    probability_of_improvement,
)
from lt_bench.report.figures.separability import separability_by_group
from lt_bench.report.figures.training import training_curves

__all__ = [
    "FIGURES",
    "FigureContext",
    "FigureInputs",
    "NothingToShow",
    "ReportFigure",
    "accuracy_vs_ratio",
    "class_mean_cosine",
    "figure",
    "interval_estimates",
    "per_class_accuracy",
    "performance_profile",
    "probability_of_improvement",
    "registered_figures",
    "separability_by_group",
    "training_curves",
    "tsne",
]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
