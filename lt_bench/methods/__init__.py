"""Regularizers: one file each, one registry, one face (``base.Regularizer``)."""

from lt_bench.methods import center, etf, prototype, sar  # noqa: F401  (registers the methods)
from lt_bench.methods.base import METHODS, Regularizer, StepContext, build_method

__all__ = ["METHODS", "Regularizer", "StepContext", "build_method"]
