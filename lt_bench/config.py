"""The run configuration: a dataclass schema, merged with a YAML file and ``key=value`` overrides.

``method`` and ``loss`` are open mappings: ``name`` picks the registry entry and every other key is
a keyword argument of that entry, checked against its signature.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lt_bench.errors import UserError
from lt_bench.options import (
    at_least,
    between,
    check_type,
    declared_types,
    greater_than,
    one_of,
    option_ranges,
)

# Every string option is one of a declared set, here (the modules that implement them import
# these; the validator checks them through ``one_of`` like any other range).
PROFILES = ("exp", "step", "pareto")
SUBSETS = ("ldam", "default_rng")  # how a long-tailed subset picks its images (data/splits.py)
GROUPINGS = ("absolute", "terciles")  # shot groups (data/groups.py); "auto" was removed
SAMPLERS = ("instance", "class_balanced", "class_balanced_iid", "square_root")
AUGMENTATIONS = ("crop_flip", "crop", "none")
CLASSIFIERS = ("auto", "linear", "cosine")
SCHEDULES = ("multistep", "cosine")
SELECTIONS = ("last", "best_val")
TRACKERS = ("tensorboard", "mlflow")


@option_ranges(
    profile=one_of(*PROFILES),
    subset=one_of(*SUBSETS),
    grouping=one_of(*GROUPINGS),
    sampler=one_of(*SAMPLERS),
    augment=one_of(*AUGMENTATIONS),
    ratio=at_least(1),
    split_seed=at_least(0),
    max_count=at_least(1),
    pad=at_least(0),
    batch_size=at_least(1),
    eval_batch_size=at_least(1),
    num_workers=at_least(0),
    val_per_class=at_least(0),
)
@dataclass
class DataConfig:
    name: str = "mnist_lt"
    root: Optional[str] = None
    ratio: float = 100.0
    profile: str = "exp"
    split_seed: int = 0  # the long-tailed subset; fixed by default, as in the literature
    subset: str = "ldam"  # ldam: LDAM-DRW's images (legacy numpy seed, per-class shuffle); default_rng
    max_count: Optional[int] = None
    grouping: str = "absolute"  # many/medium/few: >100 / 20-100 / <20 images, or terciles
    sampler: str = "instance"  # instance | class_balanced (class-aware) | class_balanced_iid | square_root
    augment: str = "crop_flip"  # crop_flip | crop | none
    pad: int = 4  # random-crop padding of the in-memory path
    batch_size: int = 128
    eval_batch_size: int = 512
    num_workers: int = 4  # image-folder path only
    val_per_class: int = 20  # validation images of every class (no val list; 0: none, the published split)
    split_file: Optional[str] = None  # a split.json to train on: its split drawn again, exactly
    options: dict[str, Any] = field(default_factory=dict)  # extra data set arguments


@option_ranges(cosine_scale=greater_than(0), classifier=one_of(*CLASSIFIERS))
@dataclass
class ModelConfig:
    name: str = "resnet32_cifar"  # any timm.create_model name
    pretrained: bool = False
    weights: Optional[str] = None  # a local weights file for the backbone
    classifier: str = "auto"  # linear | cosine | auto (cosine for LDAM)
    cosine_scale: Optional[float] = (
        None  # a cosine classifier's s; default: the loss's (LDAM: loss.scale), else 30
    )
    options: dict[str, Any] = field(default_factory=dict)  # extra timm.create_model arguments


@option_ranges(
    schedule=one_of(*SCHEDULES),
    epochs=at_least(1),
    lr=greater_than(0),
    momentum=between(0, 1, high_open=True),
    weight_decay=at_least(0),
    milestones=at_least(1),
    gamma=greater_than(0),
    warmup_epochs=at_least(0),
)
@dataclass
class OptimConfig:
    epochs: int = 200
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 2e-4
    schedule: str = "multistep"  # multistep | cosine
    milestones: list[int] = field(default_factory=lambda: [160, 180])
    gamma: float = 0.01  # multistep: lr x gamma at each milestone (x0.01 at 160, x0.0001 at 180)
    warmup_epochs: int = 5  # linear warm-up, per step


@option_ranges(
    amp=one_of("auto", True, False),
    eval_every=at_least(0),
    log_every_steps=at_least(0),
    loggers=one_of(*TRACKERS),
    select=one_of(*SELECTIONS),
    threads=at_least(1),
)
@dataclass
class TrainConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # CPU threads of the run's arithmetic. Part of the config, not of the launcher: CPU kernels
    # sum in another order with another thread count, so a run's numbers must not depend on how
    # many runs share the machine (sweep --jobs) or on which machine resumes it.
    threads: int = 1
    amp: Any = (
        "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | true (bf16 on any device) | false
    )
    channels_last: bool = True  # NHWC activations (faster with cuDNN and with oneDNN on CPU)
    compile: bool = False
    sync_bn: bool = False  # SyncBatchNorm across DDP processes (CUDA only)
    eval_every: int = (
        0  # evaluate on the test set every N epochs (0: only at the end); logged, never selected on
    )
    select: str = (
        "last"  # last | best_val (best balanced accuracy on a validation set, every epoch)
    )
    # The run folder first, then a tqdm bar on a terminal or a line an epoch in logs; false: nothing.
    progress: bool = True
    log_every_steps: int = 0  # in logs, also a line every N training steps (0: epoch lines only)
    loggers: list[str] = field(default_factory=list)  # tensorboard, mlflow (lt_bench/trackers.py)
    experiment: Optional[str] = None  # the MLflow experiment; lt-bench sweep sets the study name


@option_ranges(seed=at_least(0))
@dataclass
class Config:
    seed: int = 0
    out_dir: str = "runs"
    name: Optional[str] = None  # run folder name; default <data>_<label>_<config hash>
    # A short readable name for the run: its folder's middle part and its tracker run name
    # (lt-bench sweep sets the arm's label and seed; default: method, loss and the settings that
    # differ). Never part of the run id.
    label: Optional[str] = None
    # Modules imported before the registries are read (plugins: a module that registers a method,
    # loss, data set, stage or model), as in mmengine's custom_imports. Never part of the run id.
    imports: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    loss: dict[str, Any] = field(default_factory=lambda: {"name": "ce", "reweight": "none"})
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stage: dict[str, Any] = field(
        default_factory=dict
    )  # a second stage on a finished run (lt-bench retrain)


# What is, and is not, part of a run's or a setting's identity: declared here once.
# Keys that change where or how a run is shown, not what it computes: left out of the run id
# (changing this list would change every run id).
NON_IDENTITY_KEYS = (
    "out_dir",
    "name",
    "label",
    "imports",
    "train.progress",
    "train.log_every_steps",
    "train.loggers",
    "train.experiment",
)
# Keys that are part of the run id but not of a *setting*: where the data lies and how the
# evaluation is batched, on which device, how often the test set is looked at (never selected on).
EXECUTION_KEYS = (
    "data.root",
    "data.num_workers",
    "data.eval_batch_size",
    "train.device",
    "train.eval_every",
    "train.threads",
)
# Keys that never make two runs different rows of a table: the seed (a row's replicate), and the
# two lists above.
NOT_SETTINGS = ("seed", *NON_IDENTITY_KEYS, *EXECUTION_KEYS)
# Keys every table label already shows: the data set and ratio are the column group; method, loss,
# re-weighting and stage are the label's base.
LABEL_KEYS = ("data.name", "data.ratio", "method.name", "loss.name", "loss.reweight", "stage.name")


def _suggest(key: str) -> str:
    known = [f"{top}.{sub}" if sub else top for top, sub in _schema_keys()]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _schema_keys():
    schema = OmegaConf.structured(Config)
    for top, value in schema.items():
        if isinstance(value, DictConfig) and top not in ("method", "loss"):
            for sub in value:
                yield top, sub
        else:
            yield top, ""


def _merge(*parts) -> DictConfig:
    try:
        return OmegaConf.merge(*parts)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or ""
        message = str(err).splitlines()[0]
        if "Key" in type(err).__name__ or "not in struct" in message:
            raise UserError(f"unknown config key {key!r}{_suggest(key)}") from err
        raise UserError(
            f"bad value for config key {key!r}: {message}; fix the YAML file or the override"
        ) from err


@functools.cache
def _schema() -> DictConfig:
    """The structured schema, built once: ``OmegaConf.merge`` copies its first argument, so the
    cached node is never changed (building it is most of the time a report spends per run)."""
    return OmegaConf.structured(Config)


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> DictConfig:
    """Schema <- YAML file <- dotted ``key=value`` overrides (later wins)."""
    parts = [_schema()]
    if path is not None:
        loaded = read_yaml_config(Path(path))
        check_key_value_typos(loaded, f"config file {path}: ")
        parts.append(OmegaConf.create(loaded))
    part = parse_overrides(overrides)
    check_key_value_typos(OmegaConf.to_container(part, resolve=False))
    parts.append(part)
    for part in parts[1:]:
        check_raw_types(part)
    cfg = _merge(*parts)
    for section in ("method", "loss"):
        if "name" not in cfg[section]:
            raise UserError(f"config section {section!r} needs a name, e.g. {section}.name=...")
    return cfg


class DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping of a YAML file (PyYAML would silently keep the last)."""

    def __init__(self, key: str, line: int):
        super().__init__(f"{key!r} is given twice (line {line})")
        self.key, self.line = key, line


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """``yaml.safe_load`` that refuses a key given twice in one mapping: PyYAML keeps the last one,
    so a second ``optim:`` section would silently drop every key of the first. libyaml's parser
    where PyYAML was built with it (5-10x faster: the report reads every run's config)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise DuplicateKey(key_node.value, key_node.start_mark.line + 1)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def read_yaml_config(path: Path) -> dict:
    """A config file's mapping; a missing file, bad YAML, a key given twice or a file that is not
    a mapping is a one-line UserError naming the file."""
    if not path.is_file():
        raise UserError(
            f"config file {path} does not exist; pass a YAML file such as experiments/mnist_lt.yaml"
        )
    try:
        loaded = yaml.load(path.read_text(), Loader=UniqueKeyLoader)
    except DuplicateKey as err:
        raise UserError(
            f"config file {path}: {err}; keep one (a later one would silently replace the first)"
        ) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config file {path} is not valid YAML{where}; fix its syntax") from err
    if loaded is not None and not isinstance(loaded, dict):
        raise UserError(
            f"config file {path} must hold a mapping of keys, not a {type(loaded).__name__}"
        )
    return loaded or {}


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> DictConfig:
    """The ``key=value`` overrides as one config; one that is not key=value, or whose value is not
    valid YAML (an unclosed bracket, a key given twice), is named."""
    for override in overrides:
        if "=" not in override:
            raise UserError(f"override {override!r} is not key=value; write e.g. method.name=sar")
        try:
            OmegaConf.from_dotlist([override])
        except (OmegaConfBaseException, yaml.YAMLError) as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise UserError(f"bad override {override!r} ({problem}); fix its value") from err
    return OmegaConf.from_dotlist(list(overrides))


def check_key_value_typos(values, where: str = "") -> None:
    """Refuse the flow-mapping pitfall: ``{num_classes:4}`` (no space after the colon) is YAML for
    the key ``num_classes:4`` with no value, which would silently leave the option at its default.
    ``where`` prefixes the message (the config file)."""
    for path, key, value in _mapping_entries(values):
        if value is None and isinstance(key, str) and ":" in key:
            name, _, given = key.partition(":")
            raise UserError(
                f"{where}{path or 'config'}: {key!r} looks like key:value without a space; "
                f"write {{{name}: {given}, ...}}"
            )


def _mapping_entries(values, path: str = ""):
    """(dotted path of the mapping, key, value) for every entry of every nested mapping."""
    if isinstance(values, dict):
        for key, value in values.items():
            yield path, key, value
            yield from _mapping_entries(value, f"{path}.{key}" if path else str(key))
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from _mapping_entries(item, f"{path}[{index}]")


def to_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def _differences(values: dict, defaults: dict) -> dict:
    out = {}
    for key, value in values.items():
        default = defaults.get(key, _MISSING) if isinstance(defaults, dict) else _MISSING
        if isinstance(value, dict) and isinstance(default, dict):
            nested = _differences(value, default)
            if nested:
                out[key] = nested
        elif value != default:
            out[key] = value
    return out


_MISSING = object()


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested mappings as dotted keys (``{"data": {"ratio": 10}}`` -> ``{"data.ratio": 10}``);
    lists and non-empty leaves of other kinds are kept, lists written as JSON text."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def identity(cfg: DictConfig) -> dict:
    """What makes a run what it is: the values that differ from the schema's defaults, less the
    keys that do not affect results (NON_IDENTITY_KEYS). A key added to the schema later, with a
    default, therefore leaves every existing run id unchanged."""
    values, defaults = to_dict(cfg), to_dict(OmegaConf.structured(Config))
    for resolved in (values, defaults):
        for key in NON_IDENTITY_KEYS:
            *parents, leaf = key.split(".")
            node = resolved
            for p in parents:
                node = node.get(p, {})
            node.pop(leaf, None)
    return _differences(values, defaults)


def identity_values(cfg: DictConfig) -> dict:
    """The config as dotted keys, less :data:`NON_IDENTITY_KEYS`, with the method's and loss's
    declared defaults filled in where not set: two runs with equal values compute the same thing
    (what ``--resume`` and a sweep's reuse of a done run compare; a config.yaml written with the
    defaults filled in, see :func:`resolved`, equals the config it was written from)."""
    values = flatten(to_dict(resolved(cfg)))
    for key in NON_IDENTITY_KEYS:
        values.pop(key, None)
    return values


def option_defaults(section: str, name: str) -> dict[str, Any]:
    """The declared defaults of the ``method`` or ``loss`` named ``name`` (a loss's include the
    re-weighting options, which sit in the loss section); {} for a name no registry holds. Read
    from the source files (:mod:`lt_bench.source_defaults`), so no torch is imported."""
    from lt_bench.source_defaults import loss_defaults, method_defaults, reweighting_defaults

    if section == "method":
        return dict(method_defaults().get(name, {}))
    if name not in loss_defaults():
        return {}
    return {**loss_defaults()[name], **reweighting_defaults()}


@functools.cache
def run_defaults(method: str, loss: str, stage: str | None) -> dict[str, Any]:
    """Flattened defaults of a run's options: the schema's, its method's, loss's, re-weighting's
    and stage's (a child run's config holds every stage option; a label shows one only where it
    differs from its default), read without importing torch (:mod:`lt_bench.source_defaults`). An
    unknown method, loss or stage (one that no longer exists) adds nothing: its runs' values are
    taken as written."""
    from lt_bench.source_defaults import (
        loss_defaults,
        method_defaults,
        reweighting_defaults,
        stage_defaults,
    )

    values = to_dict(_schema())
    values["method"].update(method_defaults().get(method, {}))
    values["loss"].update(loss_defaults().get(loss, {}))
    values["loss"].update(reweighting_defaults())
    if stage in stage_defaults():
        values["stage"] = dict(stage_defaults()[stage])
    return flatten(values)


def resolved(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` with every method and loss option written out: the declared default
    where the config does not set it. What a run's config.yaml holds and ``train --print-config``
    shows. Run ids hash the config as given (:func:`run_id` of ``cfg``, never of this copy), so
    filling in the defaults changes no run id."""
    out = cfg.copy()
    for section in ("method", "loss"):
        given = to_dict(cfg[section])
        defaults = option_defaults(section, str(given.get("name")))
        missing = {k: v for k, v in defaults.items() if k not in given}
        if missing:
            out[section] = OmegaConf.merge(cfg[section], missing)
    return out


def run_id(cfg: DictConfig) -> str:
    """A short hash of everything that affects the results: same config, same id."""
    return hashlib.sha1(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()[:10]


LABEL_CHARS = 40  # a run folder's readable part is cut to this many characters
_UNSAFE = re.compile(r"[^a-z0-9._=+-]+")


def run_label(cfg: DictConfig) -> str:
    """A run's readable name: ``cfg.label`` (a study's arm label), else the method, the loss when
    not plain cross-entropy, and the method and loss options that differ from their declared
    defaults: ``sar + balanced_softmax (trade_off=0)``. Tracker run names use it as it is."""
    if cfg.get("label"):
        return str(cfg.label)
    parts = [str(cfg.method.name)]
    if cfg.loss.name != "ce":
        parts.append(str(cfg.loss.name))
    changed = []
    for section in ("method", "loss"):
        given, defaults = to_dict(cfg[section]), option_defaults(section, str(cfg[section].name))
        for key, value in sorted(given.items()):
            if key != "name" and not (key in defaults and defaults[key] == value):
                if not (key == "reweight" and value == "none"):
                    changed.append(f"{key}={json.dumps(value) if isinstance(value, (list, dict)) else value}")
    text = " + ".join(parts)
    return f"{text} ({', '.join(changed)})" if changed else text


def folder_label(cfg: DictConfig) -> str:
    """The readable middle of a run folder's name, ``<data>_<folder label>_<run id>``:
    :func:`run_label` lowercased, `` + `` as ``+``, every run of characters other than
    ``a-z 0-9 . _ = + -`` made one ``-``, cut to :data:`LABEL_CHARS`, then the seed:
    ``sar+balanced_softmax-trade_off=0_s1``."""
    text = run_label(cfg).lower().replace(" + ", "+")
    text = re.sub(r"-?\+-?", "+", _UNSAFE.sub("-", text)).strip("-+")
    return f"{text[:LABEL_CHARS].rstrip('-') or cfg.method.name}_s{cfg.seed}"


SECTIONS = {
    "": Config,
    "data.": DataConfig,
    "model.": ModelConfig,
    "optim.": OptimConfig,
    "train.": TrainConfig,
}


def check_raw_types(part: DictConfig) -> None:
    """The booleans of a YAML file or the overrides, before OmegaConf converts them: it would read
    ``train.compile=2`` as true. (Numbers it converts faithfully, ``5e-4`` included.)"""
    values = OmegaConf.to_container(part, resolve=False)
    for prefix, schema in SECTIONS.items():
        section = values.get(prefix.rstrip("."), {}) if prefix else values
        if not isinstance(section, dict):
            continue
        types = declared_types(schema)
        for name, value in section.items():
            if types.get(name) is bool and not (isinstance(value, str) and "${" in value):
                check_type(f"{prefix}{name}", value, bool)
