"""One small name -> factory registry, shared by data sets, methods, losses, stages and tables.

Before a registry is first read (``get``, ``names``, ``in``, iteration) the installed plugins are
loaded (the ``lt_bench.plugins`` entry points, :mod:`lt_bench.plugins`), once per process: a
sweep's worker processes load them too, and ``import lt_bench`` stays light."""

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
        """``@REGISTRY.register("name")``. A name already taken is refused (a plugin cannot
        silently replace a built-in entry), unless by the same definition imported again
        (``importlib.reload`` of a plugin module in a notebook)."""

        def decorator(obj: T) -> T:
            taken = self._entries.get(name)
            if taken is not None and not _same_definition(taken, obj):
                raise UserError(
                    f"{self.kind} {name!r} is registered twice: by {_origin(taken)} and by "
                    f"{_origin(obj)}; register the new one under another name"
                )
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        _load_plugins()
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
        _load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        _load_plugins()
        return name in self._entries

    def __iter__(self):
        return iter(self.names())


def _load_plugins() -> None:
    from lt_bench.plugins import load_entry_points

    load_entry_points()


def _same_definition(taken, obj) -> bool:
    """The same object, or the same class or function defined again (a module imported again)."""
    if taken is obj:
        return True
    defined = all(hasattr(x, "__qualname__") for x in (taken, obj))  # not instances
    return defined and _origin(taken) == _origin(obj)


def _origin(obj) -> str:
    """Where an entry was defined: ``module.QualifiedName``."""
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def import_package_modules(package: str, path) -> None:
    """Import every module of a package (``import_package_modules(__name__, __path__)`` in its
    ``__init__``), so that a new data set or method file registers itself: one file plus its
    ``@REGISTRY.register`` line, nothing else to edit."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
