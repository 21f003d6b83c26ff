"""The declared defaults of every method's, loss's, re-weighting's and second stage's options, read
from their source files with :mod:`ast`, never imported: importing them imports torch, and the
report (a label shows a value only where it differs from its default) and the config comparisons
of sweeps and resumes (:func:`lt_bench.config.resolved`) need only the defaults.

:func:`lt_bench.options.declared_defaults` is the importing version, and the one that counts:
``tests/report/test_defaults.py`` checks that the two agree for every registered method, loss,
re-weighting and stage. What is read, as the registries declare it:

- a method: a class in ``lt_bench/methods/*.py`` decorated ``@METHODS.register("<name>")``; its
  options are its ``__init__``'s (or its first base's) keyword arguments with a default, less the
  ``given_arguments`` the engine always passes;
- a loss: a class in ``lt_bench/losses.py`` decorated ``@LOSSES.register("<name>")``, likewise;
  the re-weighting options: ``Reweighting``'s keyword arguments;
- a stage: the ``Options`` dataclass of the ``@register``-ed class in ``lt_bench/stages/<name>.py``
  (its fields and its bases' fields; none: the stage takes no options).

A default is evaluated with only module-level constants (followed through ``from lt_bench...
import``) and a few builtins in scope; ``field(default=...)`` and ``field(default_factory=...)``
are understood.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any

import lt_bench

PACKAGE = Path(lt_bench.__file__).resolve().parent
BUILTINS = {
    f.__name__: f
    for f in (abs, bool, dict, float, int, len, list, max, min, range, round, str, sum, tuple)
}
NOT_STAGES = ("__init__", "base")  # lt_bench.stages.NOT_STAGES, and the package itself


class _Module:
    """One parsed source file: its top-level classes, assignments and ``from`` imports."""

    def __init__(self, path: Path):
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.classes: dict[str, ast.ClassDef] = {}
        self.assigned: dict[str, ast.expr] = {}
        self.imported: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        for node in self.tree.body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigned[target.id] = node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                if isinstance(node.target, ast.Name):
                    self.assigned[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lt_bench"):
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = (node.module, alias.name)


@cache
def _module(path: Path) -> _Module:
    return _Module(path)


def _module_of(dotted: str) -> _Module | None:
    """The source file of ``lt_bench.x.y`` (a module or a package's ``__init__``), not imported."""
    parts = dotted.split(".")[1:]
    for path in (
        PACKAGE.joinpath(*parts).with_suffix(".py"),
        PACKAGE.joinpath(*parts, "__init__.py"),
    ):
        if path.is_file():
            return _module(path)
    return None


def _constant(module: _Module, name: str) -> Any:
    """A module-level name's value: assigned in the module, or imported from an lt_bench module."""
    if name in module.assigned:
        return _evaluate(module.assigned[name], module)
    if name in module.imported:
        source, original = module.imported[name]
        other = _module_of(source)
        if other is not None:
            return _constant(other, original)
    raise KeyError(f"{name} is not a module-level constant of {module.path}")


def _evaluate(node: ast.expr, module: _Module) -> Any:
    """The value of a default's expression, with the module's constants and a few builtins."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.Call) and _name(node.func) == "field":
        keywords = {k.arg: k.value for k in node.keywords}
        if "default" in keywords:
            return _evaluate(keywords["default"], module)
        return _evaluate(keywords["default_factory"], module)()
    scope: dict[str, Any] = {"__builtins__": BUILTINS}
    for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - set(BUILTINS):
        try:
            scope[name] = _constant(module, name)
        except KeyError:
            pass  # a name bound inside the expression (a comprehension's, a lambda's)
    return eval(compile(ast.Expression(node), str(module.path), "eval"), scope)  # noqa: S307


def _name(node: ast.expr) -> str | None:
    """``field`` for ``field`` and for ``dataclasses.field``."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _class(module: _Module, name: str) -> tuple[ast.ClassDef, _Module] | None:
    """A class by its name in ``module``, followed through ``from lt_bench... import``."""
    if name in module.classes:
        return module.classes[name], module
    if name in module.imported:
        source, original = module.imported[name]
        other = _module_of(source)
        return None if other is None else _class(other, original)
    return None


def _bases(node: ast.ClassDef, module: _Module) -> list[tuple[ast.ClassDef, _Module]]:
    """The class's bases that are lt_bench classes, in order."""
    found = (_class(module, base.id) for base in node.bases if isinstance(base, ast.Name))
    return [base for base in found if base is not None]


def _attribute(node: ast.ClassDef, module: _Module, name: str) -> ast.stmt | None:
    """The statement defining ``name`` in the class body or, failing that, in its bases'."""
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)) and statement.name == name:
            return statement
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return statement
    for base, base_module in _bases(node, module):
        found = _attribute(base, base_module, name)
        if found is not None:
            return found
    return None


def _defining_module(node: ast.ClassDef, module: _Module, name: str) -> _Module:
    """The module whose class (``node`` or a base) defines ``name``, where its defaults live."""
    if any(getattr(s, "name", None) == name for s in node.body):
        return module
    for base, base_module in _bases(node, module):
        if _attribute(base, base_module, name) is not None:
            return _defining_module(base, base_module, name)
    return module


def _keyword_defaults(node: ast.ClassDef, module: _Module) -> dict[str, Any]:
    """A class's options: its ``__init__``'s arguments with a default, less ``given_arguments``."""
    init = _attribute(node, module, "__init__")
    if not isinstance(init, ast.FunctionDef):
        return {}
    where = _defining_module(node, module, "__init__")
    given = _attribute(node, module, "given_arguments")
    skipped = set(_evaluate(given.value, module)) if isinstance(given, ast.Assign) else set()
    arguments = init.args
    positional = [*arguments.posonlyargs, *arguments.args]
    pairs = list(zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults))
    pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None]
    return {a.arg: _evaluate(d, where) for a, d in pairs if a.arg not in skipped}


def _registered(module: _Module, registry: str) -> dict[str, ast.ClassDef]:
    """``name -> class`` for each class of the module decorated ``@<registry>.register("name")``."""
    found = {}
    for node in module.classes.values():
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "register"
                and _name(decorator.func.value) == registry
                and decorator.args
                and isinstance(decorator.args[0], ast.Constant)
            ):
                found[decorator.args[0].value] = node
    return found


@cache
def method_defaults() -> dict[str, dict[str, Any]]:
    """Every method's name -> its options' defaults."""
    found = {}
    for path in sorted((PACKAGE / "methods").glob("*.py")):
        module = _module(path)
        for name, node in _registered(module, "METHODS").items():
            found[name] = _keyword_defaults(node, module)
    return found


@cache
def loss_defaults() -> dict[str, dict[str, Any]]:
    """Every base loss's name -> its options' defaults."""
    module = _module(PACKAGE / "losses.py")
    return {
        name: _keyword_defaults(node, module)
        for name, node in _registered(module, "LOSSES").items()
    }


@cache
def reweighting_defaults() -> dict[str, Any]:
    """The re-weighting options' defaults (``loss.reweight``, ``loss.cb_beta``, ...)."""
    module = _module(PACKAGE / "losses.py")
    return _keyword_defaults(module.classes["Reweighting"], module)


@cache
def stage_defaults() -> dict[str, dict[str, Any]]:
    """Every second stage's name (its file's) -> its ``stage.*`` options' defaults."""
    found = {}
    for path in sorted((PACKAGE / "stages").glob("*.py")):
        if path.stem in NOT_STAGES:
            continue
        module = _module(path)
        for node in module.classes.values():
            if any(_name(d) == "register" for d in node.decorator_list):
                options = _attribute(node, module, "Options")
                found[path.stem] = (
                    _field_defaults(options, _defining_module(node, module, "Options"))
                    if isinstance(options, ast.ClassDef)
                    else {}
                )
    return found


def _field_defaults(node: ast.ClassDef, module: _Module) -> dict[str, Any]:
    """A dataclass's fields with their defaults, its bases' first (a field redeclared keeps its
    place and takes the new default, as dataclasses do)."""
    fields: dict[str, Any] = {}
    for base, base_module in _bases(node, module):
        fields.update(_field_defaults(base, base_module))
    for statement in node.body:
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.value is not None
            and "ClassVar" not in ast.unparse(statement.annotation)
        ):
            fields[statement.target.id] = _evaluate(statement.value, module)
    return fields
