"""lt-bench: a benchmark suite for long-tailed image classification.

``import lt_bench`` registers the CIFAR ResNets (``resnet{20,32,44,56,110}_cifar``) and
``small_cnn`` in timm's model registry. Importing timm costs about 3 s, so the registration waits
for it: done now if timm is already imported, otherwise the moment anything imports timm.
``import lt_bench`` itself stays about a millisecond (the command line's ``--help`` needs no torch).

The Python API (docs/api.md) is the names of :data:`__all__`: ``from lt_bench import collect``.
Each is imported from its module on first use (PEP 562 ``__getattr__``), so a name costs its
module's import only when used: training imports torch, the tables and loaders only pandas.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

__version__ = "0.1.0"

# typing.TYPE_CHECKING without importing typing (5 ms): type checkers take any TYPE_CHECKING as true.
TYPE_CHECKING = False

# name -> "module:attribute", imported on first use.
_API = {
    # configs, training, second stages, evaluation
    "load_config": "lt_bench.config:load_config",
    "train": "lt_bench.engine:train",
    "retrain": "lt_bench.stages:retrain",
    "evaluate_run": "lt_bench.predict:evaluate_run",
    # studies
    "load_study": "lt_bench.study:load_study",
    "run_study": "lt_bench.study:run_study",
    # runs -> DataFrames
    "collect": "lt_bench.report.collect:collect",
    "load_per_class": "lt_bench.report.loaders:load_per_class",
    "load_curves": "lt_bench.report.loaders:load_curves",
    # the report, its tables and figures
    "write_report": "lt_bench.report:write_report",
    "read_figure_inputs": "lt_bench.report:read_figure_inputs",
    "main_table": "lt_bench.report.tables.main:main_table",
    "ratio_table": "lt_bench.report.tables.ratio:ratio_table",
    "separability_table": "lt_bench.report.tables.separability:separability_table",
    "centroid_table": "lt_bench.report.tables.centroid:centroid_table",
    "settings_table": "lt_bench.report.tables.settings:settings_table",
    "FigureContext": "lt_bench.report.figures.face:FigureContext",
    "NothingToShow": "lt_bench.report.figures.face:NothingToShow",
    "per_class_accuracy": "lt_bench.report.figures.per_class:per_class_accuracy",
    "training_curves": "lt_bench.report.figures.training:training_curves",
    "accuracy_vs_ratio": "lt_bench.report.figures.ratio:accuracy_vs_ratio",
    "separability_by_group": "lt_bench.report.figures.separability:separability_by_group",
    "class_mean_cosine": "lt_bench.report.figures.features:class_mean_cosine",
    "tsne": "lt_bench.report.figures.features:tsne",
    "interval_estimates": "lt_bench.report.figures.rliable:interval_estimates",
    "performance_profile": "lt_bench.report.figures.rliable:performance_profile",
    "probability_of_improvement": "lt_bench.report.figures.rliable:probability_of_improvement",
    "class_distribution_figure": "lt_bench.report.plots:class_distribution_figure",
    "save_figure": "lt_bench.report.plots:save_figure",
}

__all__ = [  # a literal list, so linters and type checkers read it; the same names as _API
    "load_config",
    "train",
    "retrain",
    "evaluate_run",
    "load_study",
    "run_study",
    "collect",
    "load_per_class",
    "load_curves",
    "write_report",
    "read_figure_inputs",
    "main_table",
    "ratio_table",
    "separability_table",
    "centroid_table",
    "settings_table",
    "FigureContext",
    "NothingToShow",
    "per_class_accuracy",
    "training_curves",
    "accuracy_vs_ratio",
    "separability_by_group",
    "class_mean_cosine",
    "tsne",
    "interval_estimates",
    "performance_profile",
    "probability_of_improvement",
    "class_distribution_figure",
    "save_figure",
]


def __getattr__(name: str):
    """The API's names, imported from their modules on first use (then kept in this module)."""
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = target.split(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports them
    from lt_bench.config import load_config
    from lt_bench.engine import train
    from lt_bench.predict import evaluate_run
    from lt_bench.report import read_figure_inputs, write_report
    from lt_bench.report.collect import collect
    from lt_bench.report.figures.face import FigureContext, NothingToShow
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
    from lt_bench.report.loaders import load_curves, load_per_class
    from lt_bench.report.plots import class_distribution_figure, save_figure
    from lt_bench.report.tables.centroid import centroid_table
    from lt_bench.report.tables.main import main_table
    from lt_bench.report.tables.ratio import ratio_table
    from lt_bench.report.tables.separability import separability_table
    from lt_bench.report.tables.settings import settings_table
    from lt_bench.stages import retrain
    from lt_bench.study import load_study, run_study


def _register_models() -> None:
    import lt_bench.models.cifar_resnet  # noqa: F401  (its @register_model calls fill timm's registry)


class _RegisterOnTimmImport:
    """A meta path finder and loader (duck-typed: importlib.abc alone costs 8 ms to import) that finds
    ``timm`` with the usual finders, loads it with its own loader, then registers our models."""

    def find_spec(self, name, path=None, target=None):
        if name != "timm":
            return None
        sys.meta_path.remove(self)  # the real finders locate timm; this hook is needed only once
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:
            return spec
        self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader  # timm's own loader from now on
        _register_models()


if "timm" in sys.modules:
    _register_models()
elif not any(isinstance(finder, _RegisterOnTimmImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnTimmImport())
