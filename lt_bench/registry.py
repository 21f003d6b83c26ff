"""One small name -> factory registry, shared by data sets, methods, losses and models."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, TypeVar

from lt_bench.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; unknown names raise a one-line error with close matches."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"choose one of: {', '.join(self.names())}"
            )
            raise UserError(f"unknown {self.kind} {name!r}; {hint}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())


def import_package_modules(package: str, path) -> None:
    """Import every module of a package (``import_package_modules(__name__, __path__)`` in its
    ``__init__``), so that a new data set or method file registers itself: one file plus its
    ``@REGISTRY.register`` line, nothing else to edit."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
