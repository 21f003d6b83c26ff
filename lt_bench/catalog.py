"""What ``lt-bench list`` shows: every registered method, loss, data set, second stage and model,
each option with its type, default and range, read from the declarations (the constructors'
signatures and their ``@option_ranges``), so a new entry is listed without editing this file.
Plugins' entries are listed too, each noting the module it comes from: installed ones (the
``lt_bench.plugins`` entry points) always, modules named by ``imports`` (``--import MODULE``) once
imported (:mod:`lt_bench.plugins`)."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lt_bench.errors import UserError
from lt_bench.options import declared_defaults, declared_ranges, declared_types, type_text

KINDS = ("methods", "losses", "datasets", "stages", "models")
NO_DEFAULT = object()  # an option the caller must give (a keyword-only argument without default)


@dataclass(frozen=True)
class Option:
    name: str
    type: str
    default: Any
    range: str  # "" when none is declared


@dataclass(frozen=True)
class Entry:
    name: str
    options: list[Option] = field(default_factory=list)
    note: str = ""


def options_of(owner, skip: tuple[str, ...] = ()) -> list[Option]:
    """``owner``'s declared options (a class's keyword arguments or a dataclass's fields)."""
    defaults, ranges = declared_defaults(owner), declared_ranges(owner)
    return [
        Option(name, type_text(kind), defaults.get(name, NO_DEFAULT), str(ranges.get(name, "")))
        for name, kind in declared_types(owner).items()
        if name not in skip
    ]


def catalog(kind: str, all_models: bool = False, imports: Sequence[str] = ()) -> list[Entry]:
    """The entries of one kind (one of :data:`KINDS`), sorted by name; ``imports``: plugin
    modules to import first (``lt-bench list methods --import my_methods``), as a config's
    ``imports:`` are (looked for in the current folder too)."""
    from lt_bench.plugins import import_modules

    if kind not in KINDS:
        raise UserError(f"cannot list {kind!r}; choose one of {', '.join(KINDS)}")
    if all_models and kind != "models":
        raise UserError("--all lists every timm model; use it with lt-bench list models")
    import_modules(imports, where="--import")
    return {
        "methods": _methods,
        "losses": _losses,
        "datasets": _datasets,
        "stages": _stages,
        "models": lambda: _models(all_models),
    }[kind]()


def _methods() -> list[Entry]:
    from lt_bench.methods import METHODS

    return [
        Entry(name, options_of(METHODS.get(name)), plugin_note(METHODS.get(name)))
        for name in METHODS.names()
    ]


def plugin_note(entry) -> str:
    """``from my_methods`` for an entry a plugin registered; "" for this package's own."""
    module = getattr(entry, "__module__", "") or ""
    return "" if module.split(".")[0] == "lt_bench" else f"from {module}"


def _losses() -> list[Entry]:
    from lt_bench.losses import LOSSES, Reweighting

    entries = [
        Entry(name, options_of(LOSSES.get(name)), plugin_note(LOSSES.get(name)))
        for name in LOSSES.names()
    ]
    note = "re-weighting options, set beside any loss's (loss.reweight=drw loss.drw_epoch=160)"
    return [*entries, Entry("(every loss)", options_of(Reweighting), note)]


def _datasets() -> list[Entry]:
    from lt_bench.data import DATASETS

    note = "options go under data.options"
    return [
        Entry(name, options_of(DATASETS.get(name)), _joined(note, plugin_note(DATASETS.get(name))))
        for name in DATASETS.names()
    ]


def _joined(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _stages() -> list[Entry]:
    from lt_bench.stages import stage_names, stage_options
    from lt_bench.stages.base import REGISTRY

    note = "lt-bench retrain RUN --stage {name} stage.<option>=..."
    names = sorted({*stage_names(), *REGISTRY.names()})  # a plugin's stages have no file here
    return [
        Entry(
            name,
            options_of(stage_options(name)),
            _joined(note.format(name=name), plugin_note(REGISTRY.get(name))),
        )
        for name in names
    ]


def _models(all_models: bool) -> list[Entry]:
    """The project's registered backbones (timm's registry, our module) with their options and
    input size; with ``all_models``, every name timm knows (options not shown)."""
    import timm
    from timm.models import get_pretrained_cfg

    import lt_bench.models.cifar_resnet as ours

    if all_models:
        return [Entry(name) for name in timm.list_models()]
    entries = []
    for name in timm.list_models(module=ours.__name__.rsplit(".", 1)[-1]):
        network = typing.get_type_hints(getattr(ours, name))["return"]
        size = "x".join(map(str, get_pretrained_cfg(name).input_size))
        # The data set gives num_classes; each variant fixes its depth.
        options = options_of(network, skip=("num_classes", "depth"))
        entries.append(Entry(name, options, f"input {size}; options go under model.options"))
    return entries


MODELS_NOTE = (
    "any timm.create_model name works as model.name too (e.g. resnet18, vit_tiny_patch16_224); "
    "lt-bench list models --all lists them"
)


def default_text(value: Any) -> str:
    """A default as YAML writes it: true / false / null, else the value."""
    if value is NO_DEFAULT:
        return "(required)"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def format_catalog(kind: str, entries: list[Entry]) -> str:
    """One block an entry: its name (and note), then one line an option: name, type, default,
    range."""
    if kind == "models" and entries and not entries[0].options and not entries[0].note:
        return "\n".join(entry.name for entry in entries) + "\n"  # --all: the names alone
    lines = []
    for entry in entries:
        lines.append(entry.name + (f"  ({entry.note})" if entry.note else ""))
        if not entry.options:
            lines.append("    no options")
        rows = [
            (o.name, o.type, f"default {default_text(o.default)}", o.range) for o in entry.options
        ]
        widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
        for row in rows:
            lines.append("    " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if kind == "models":
        lines.append(f"\n{MODELS_NOTE}")
    return "\n".join(lines) + "\n"
