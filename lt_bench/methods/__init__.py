"""Regularizers: one file each, one registry, one face (``base.Regularizer``)."""

from lt_bench.methods.base import METHODS, Regularizer, StepContext, build_method
from lt_bench.registry import import_package_modules

import_package_modules(__name__, __path__)  # every method file registers itself

__all__ = ["METHODS", "Regularizer", "StepContext", "build_method"]
