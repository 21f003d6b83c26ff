"""Plugins: code outside this package that registers a method, loss, data set, stage or table.

Two ways in, both without a wrapper script (``docs/add_a_method.md`` walks through both):

- ``imports:``, a list of module names in a config or a study file (``imports=[my_methods]`` on
  the command line), as mmengine's ``custom_imports``. :func:`import_modules` imports them before
  the registries are read: :func:`lt_bench.validate.validate` for a run's config (in ``lt-bench
  train``, in every sweep worker and submitit job: the list travels with each point's config) and
  :func:`lt_bench.study.load_study` for a study, in the sweep process, before its points are
  checked. Where they are looked for: ``sys.path`` as Python has it, plus the current folder, plus
  the study file's folder for a study's points. Those folders are appended (never put in front:
  a file ``yaml.py`` beside a study must not hide the real one) to ``sys.path`` and to
  ``PYTHONPATH``, so every process this one starts finds the same modules: spawned sweep workers
  (which start with this process's ``sys.path``), submitit and slurm jobs (which inherit the
  environment).
- the entry-point group ``lt_bench.plugins``, for an installed distribution. Every entry point of
  the group is loaded once per process, when a registry is first read
  (:class:`lt_bench.registry.Registry`), never at ``import lt_bench``: a new worker process loads
  them too. An entry point names a module (``my_methods``: importing it registers its entries) or
  a function (``my_methods:register``: imported, then called once with no arguments).

A plugin that cannot be imported is a one-line :class:`UserError`; so is a plugin that registers a
name already taken (:meth:`Registry.register`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from lt_bench.errors import UserError, one_line

ENTRY_POINT_GROUP = "lt_bench.plugins"

_entry_points_loaded = False  # once per process (a spawned worker is a new process)
_loading = False  # a plugin that reads a registry while it is loaded sees what is registered so far


def import_modules(
    modules: Iterable[str], folders: Iterable[str | Path] = (), where: str = "imports"
) -> None:
    """Import each module of ``modules`` (a config's or a study's ``imports:``), after adding the
    current folder and ``folders`` to the import path (:func:`add_import_folder`). A module that
    is not found is a one-line UserError prefixed by ``where``."""
    modules = list(modules or ())
    if not modules:
        return  # the import path is left alone when there is nothing to import
    for module in modules:
        if not isinstance(module, str) or not module.strip():
            raise UserError(
                f"{where}: {module!r} is not a module name; write e.g. imports: [my_methods]"
            )
    for folder in (os.getcwd(), *folders):
        add_import_folder(folder)
    for module in modules:
        _import(module.strip(), where)


def _import(module: str, where: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if module == missing or module.startswith(missing + "."):  # the module itself
            raise UserError(
                f"{where}: cannot import {module!r} ({err}); put its folder on PYTHONPATH or "
                "install it"
            ) from err
        raise UserError(  # found, but something it imports is not
            f"{where}: {module!r} was found but failed to import ({err}); install what it needs"
        ) from err
    except ImportError as err:
        raise UserError(f"{where}: {module!r} failed to import ({one_line(err)})") from err


def add_import_folder(folder: str | Path) -> None:
    """Append ``folder`` (absolute) to ``sys.path`` and to ``PYTHONPATH``, unless already there:
    this process imports from it, and so does every process it starts."""
    folder = str(Path(folder).resolve())
    if folder not in (str(Path(entry or ".").resolve()) for entry in sys.path):
        sys.path.append(folder)
    variable = os.environ.get("PYTHONPATH", "")
    if folder not in variable.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join([p for p in (variable, folder) if p])


def load_entry_points() -> None:
    """Load every entry point of the ``lt_bench.plugins`` group, once per process (called by
    :class:`~lt_bench.registry.Registry` before it is first read). One that fails is a one-line
    UserError naming the entry point and its distribution; the next read tries again."""
    global _entry_points_loaded, _loading
    if _entry_points_loaded or _loading:
        return
    _loading = True
    try:
        for entry_point in plugin_entry_points():
            _load(entry_point)
        _entry_points_loaded = True
    finally:
        _loading = False


def plugin_entry_points() -> list:
    """The installed entry points of the ``lt_bench.plugins`` group."""
    from importlib.metadata import entry_points

    found = entry_points()
    if hasattr(found, "select"):  # Python >= 3.10
        return list(found.select(group=ENTRY_POINT_GROUP))
    return list(found.get(ENTRY_POINT_GROUP, []))  # Python 3.9: a dict of groups


def _load(entry_point) -> None:
    try:
        loaded = entry_point.load()
        if entry_point.attr and callable(loaded) and not isinstance(loaded, type):
            loaded()  # module:function names a registration function
    except Exception as err:  # noqa: BLE001  an installed plugin's failure, whatever its kind
        dist = getattr(entry_point, "dist", None)
        owner = f"distribution {dist.name} {dist.version}" if dist is not None else "a distribution"
        name = dist.name if dist is not None else "it"
        raise UserError(
            f"plugin {entry_point.name} = {entry_point.value} (entry point group "
            f"{ENTRY_POINT_GROUP}, {owner}) failed to load: {type(err).__name__}: "
            f"{one_line(err)}; fix or uninstall {name}"
        ) from err
