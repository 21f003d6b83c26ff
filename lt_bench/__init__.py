"""lt-bench: a benchmark suite for long-tailed image classification.

``import lt_bench`` registers the CIFAR ResNets (``resnet{20,32,44,56,110}_cifar``) and
``small_cnn`` in timm's model registry. Importing timm costs about 3 s, so the registration waits
for it: done now if timm is already imported, otherwise the moment anything imports timm.
``import lt_bench`` itself stays about a millisecond (the command line's ``--help`` needs no torch).
"""

from __future__ import annotations

import importlib.util
import sys

__version__ = "0.1.0"


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
