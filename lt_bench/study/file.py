"""A study file: a base config times a grid of overrides (and, optionally, a tuning section).

A study file (``experiments/studies/*.yaml``)::

    name: mnist_lt_demo
    base: ../mnist_lt.yaml              # relative to the study file
    imports: [my_methods]               # plugin modules, imported before anything is read (optional)
    fixed: {optim.epochs: 12}           # overrides for every point (optional)
    arms:                               # optional: settings that are not a product, each crossed
      - {method.name: none}             # with the grid (default: one empty arm)
      - {method.name: sar, method.trade_off: 0, label: SAR (no pull)}
    grid:                               # the product of these lists
      method.name: [none, center, prototype, etf, sar]
      data.ratio: [10, 100]
      seed: [0, 1, 2]
    slurm: {partition: gpu, time_min: 240, gpus: 1, cpus: 8}   # optional
    stages: [crt, tau_norm]             # optional second stages on every finished run
    tune:                               # optional: equal-budget search (lt_bench.study.tune)
      trials: 8                         # random draws per arm (default 8), common to all arms
      seed: 1000                        # the trials' training seed, never a final's (default 1000)
      space: {optim.lr: {log_uniform: [0.01, 0.2]}}
    labels:                             # optional: column names, data set @ ratio -> display name
      mnist_lt@100: MNIST-LT ρ=100

Names in tables and figures (optional; :mod:`lt_bench.study.labels` saves them in the runs folder,
where ``lt-bench report`` reads them): an arm's ``label`` names its rows (every seed, data set and
second stage of the arm: ``SAR (no pull) + cRT``); ``labels`` maps a column, ``<data.name>@<ratio>``
as the report shows it, to its display name. A labelled arm needs a grid that varies only the
seed and the data set (``seed``, ``data.name``, ``data.ratio``): any other grid key would give one
name to several rows. Rows without a label keep their automatic name (method, loss, stage and the
non-tuned values that differ from their defaults). A point's config carries its arm's label as the
non-identity key ``label`` (it names the run folder and the tracker run), so it changes no run id.

Command-line overrides (``lt-bench sweep STUDY optim.epochs=3 train.loggers=[mlflow]``) are
parsed as ``train``'s are and apply to every point, tuning trials and finals alike. Precedence,
later wins: base config < ``fixed`` < command line < the point's own values (grid, arm, tuned
draw, and the trials' ``seed``, ``train.select`` and ``tune.at``). A command-line key that the grid,
an arm or the tuning space sets is refused rather than silently replacing the values the study
varies; ``out_dir`` is refused too (``--runs-dir`` sets it). An override is part of the run ids like
any other setting, except for the non-identity keys (``train.loggers``, ``train.progress``...).

``imports:`` names modules that register a method, loss, data set or stage of their own
(:mod:`lt_bench.plugins`; ``docs/add_a_method.md``). They are imported in the sweep process when the
study is read, before its points are checked, and looked for on ``sys.path``, in the current folder
and in the study file's folder (a ``my_methods.py`` beside the study is found wherever the sweep is
started). They join every point's config ``imports`` (the base config's, ``fixed``'s and the
command line's are kept; ``imports`` is no part of a run id), so every worker process and submitit
job imports them before it trains; the folders reach those processes on ``sys.path`` and
``PYTHONPATH``.

Reading a study needs no torch (unless its ``imports:`` do): ``lt-bench sweep --status`` stays
fast.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig

from lt_bench.config import load_config, parse_overrides
from lt_bench.errors import UserError
from lt_bench.plugins import import_modules

STUDY_KEYS = (
    "name",
    "base",
    "imports",
    "fixed",
    "arms",
    "grid",
    "slurm",
    "stages",
    "tune",
    "labels",
)
ARM_LABEL = "label"  # an arm's display name: the points' config ``label``, never in a run id
# The grid keys a labelled arm may have: they vary the seed (replicates of a row) or the column.
LABELLED_ARM_GRID_KEYS = ("seed", "data.name", "data.ratio")
TUNE_KEYS = ("trials", "seed", "strategy", "space", "space_by_method", "at")
STRATEGIES = ("random", "grid")
DEFAULT_TRIALS = 8  # per arm: enough that one lucky draw cannot decide a row
DEFAULT_TUNE_SEED = 1000  # the trials' training seed: apart from the finals' seeds (0, 1, 2, ...)
SLURM_KEYS = ("partition", "time_min", "gpus", "cpus")
DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")
# Trials per arm: each is a run, and every trial is resolved by --status; a typo such as 1e9
# would hang it with memory growing.
MAX_TRIALS = 1000


@dataclass
class Tuning:
    """A study's ``tune:`` section: ``trials`` draws per arm from the space (``random``, common
    random numbers across arms), or every combination of ``choice`` lists (``grid``)."""

    trials: int = DEFAULT_TRIALS
    seed: int = DEFAULT_TUNE_SEED
    space: dict = field(default_factory=dict)
    space_by_method: dict = field(default_factory=dict)
    at: dict = field(default_factory=dict)
    strategy: str = "random"


@dataclass
class Study:
    name: str
    base: Path | None
    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    arms: list = field(default_factory=lambda: [{}])
    slurm: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
    tune: Tuning | None = None
    arm_labels: list = field(default_factory=list)  # each arm's display name, or None
    column_labels: dict = field(default_factory=dict)  # data set @ ratio -> display name
    overrides: list = field(default_factory=list)  # command-line key=value, on every point
    imports: list = field(default_factory=list)  # plugin modules, joined to every point's imports
    folder: Path | None = None  # the study file's folder: where its imports are looked for too


def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Study:
    """Read and check a study file; every mistake is a one-line UserError naming the file, the key
    and the fix, before anything is run or written. A key set in two places where one would
    silently overwrite the other (a grid key also set by an arm or fixed) is refused, and one point
    of each arm is resolved against the schema (unknown keys, wrong types, values out of range).
    ``overrides`` (command-line ``key=value``) apply to every point, after ``fixed``."""
    path = Path(path)
    parse_overrides(overrides)  # not key=value, or a bad value: named before the study is read
    raw = _read_yaml(path)
    where = f"study file {path}"
    _check_keys(raw, STUDY_KEYS, f"{where} has")
    folder = path.parent.resolve()
    imports = _imports(raw.get("imports"), where)
    import_modules(imports, [folder], f"{where}: imports")  # before any name is looked up
    arms, arm_labels = _arms(raw.get("arms"), where)
    study = Study(
        _text(raw, "name", where) or path.stem,
        (path.parent / raw["base"]).resolve() if _text(raw, "base", where) else None,
        _mapping(raw.get("fixed"), f"{where}: fixed", "{optim.epochs: 12}"),
        _grid(raw.get("grid"), where),
        arms,
        _slurm(raw.get("slurm"), where),
        _stages(raw.get("stages"), where),
        parse_tuning(raw["tune"], path) if raw.get("tune") is not None else None,
        arm_labels,
        overrides=list(overrides),
        imports=imports,
        folder=folder,
    )
    _check_overlaps(study, where)
    _check_command_line(study, where)
    if study.overrides:
        where = f"{where} with overrides {' '.join(study.overrides)}"
    _check_points(study, where)
    _check_arm_labels(study, where)
    study.column_labels = _column_labels(raw.get("labels"), study, where)
    return study


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise UserError(
            f"study file {path} does not exist; pass a YAML file such as experiments/studies/mnist_lt_demo.yaml"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"study file {path} is not valid YAML; fix its syntax") from err
    if not isinstance(raw, dict):
        raise UserError(
            f"study file {path} must hold a mapping of keys, not a {type(raw).__name__}"
        )
    return raw


def _imports(value, where: str) -> list[str]:
    """The study's ``imports:``: a list of module names (absent: none)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(module, str) and module.strip() for module in value
    ):
        raise UserError(
            f"{where}: imports must be a list of module names, e.g. [my_methods], not {value!r}"
        )
    return [module.strip() for module in value]


def _check_keys(raw: dict, allowed: tuple, where: str) -> None:
    unknown = [str(key) for key in raw if key not in allowed]
    if unknown:
        raise UserError(f"{where} unknown keys {sorted(unknown)}; allowed: {', '.join(allowed)}")


def _text(raw: dict, key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise UserError(f"{where}: {key} must be a string, not {value!r}")
    return value


def _mapping(value, what: str, example: str) -> dict:
    """A section that maps config keys (strings) to values; absent is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a mapping, e.g. {example}, not {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise UserError(f"{what} has key {key!r}; keys are config keys such as optim.lr")
    return dict(value)


def _grid(value, where: str) -> dict:
    grid = _mapping(value, f"{where}: grid", "{seed: [0, 1, 2]}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UserError(
                f"{where}: study grid key {key!r} needs a non-empty list of values, e.g. [0, 1]"
            )
    return grid


def _arms(value, where: str) -> tuple[list[dict], list[str | None]]:
    """The arms' overrides, and each arm's ``label`` taken out of them (None: no label)."""
    if not value:
        return [{}], []
    if not isinstance(value, list) or not all(isinstance(arm, dict) for arm in value):
        raise UserError(f"{where}: arms must be a list of mappings, e.g. - {{method.name: sar}}")
    arms = [_mapping(arm, f"{where}: arm {arm}", "{method.name: sar}") for arm in value]
    labels = [arm.pop(ARM_LABEL, None) for arm in arms]
    for arm, label in zip(arms, labels):
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise UserError(
                f"{where}: arm {arm} has label {label!r}; a label is a non-empty string, e.g. "
                "label: SAR (no pull)"
            )
    named = [label for label in labels if label is not None]
    twice = next((label for label in named if named.count(label) > 1), None)
    if twice is not None:
        raise UserError(f"{where}: two arms have label {twice!r}; give each arm a label of its own")
    return arms, labels if named else []


def _check_arm_labels(study: Study, where: str) -> None:
    """A labelled arm names one row per column: its grid may vary only the seed and the data set."""
    if not study.arm_labels:
        return
    varying = [key for key in study.grid if key not in LABELLED_ARM_GRID_KEYS]
    if varying:
        raise UserError(
            f"{where}: grid key {varying[0]!r} would give each arm label to several rows; move "
            "its values into the arms (one labelled arm per value), or drop the labels"
        )


def _column_labels(value, study: Study, where: str) -> dict[str, str]:
    """The ``labels:`` section: ``<data.name>@<ratio>`` -> display name, for the study's data sets."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(
            f"{where}: labels must be a mapping of columns to names, e.g. "
            f"{{mnist_lt@100: MNIST-LT ρ=100}}, not {value!r}"
        )
    labels, names = dict(value), study_data_names(study)
    for key, label in labels.items():
        name, at, ratio = str(key).rpartition("@")
        if not at or name not in names or not _is_number(ratio):
            raise UserError(
                f"{where}: labels key {key!r} is not a column of this study (<data set>@<ratio>, "
                f"data sets: {', '.join(sorted(names))}); to name a row, give its arm a label: "
                "- {method.name: sar, label: SAR}"
            )
        if not isinstance(label, str) or not label.strip():
            raise UserError(
                f"{where}: labels.{key} is {label!r}; a column name is a non-empty string"
            )
    named = list(labels.values())
    twice = next((label for label in named if named.count(label) > 1), None)
    if twice is not None:
        raise UserError(f"{where}: two columns have label {twice!r}; give each its own name")
    return labels


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def study_data_names(study: Study) -> set[str]:
    """The data sets (``data.name``) the study's points use."""
    first = {key: values[0] for key, values in study.grid.items()}
    names = {str(resolve(study, {**arm, **first}, "runs").data.name) for arm in study.arms}
    return names | {str(name) for name in study.grid.get("data.name", [])}


def point_labels(study: Study) -> list[str | None]:
    """Each point's display name, in :func:`combinations`' order (None: no label)."""
    if not study.arm_labels:
        return [None] * len(combinations(study))
    per_arm = math.prod(len(values) for values in study.grid.values())
    return [label for label in study.arm_labels for _ in range(per_arm)]


def _slurm(value, where: str) -> dict:
    slurm = _mapping(value, f"{where}: slurm", "{partition: gpu, time_min: 240}")
    _check_keys(slurm, SLURM_KEYS, f"{where}: slurm has")
    for key, given in slurm.items():
        ok = isinstance(given, str) if key == "partition" else _whole(given) and given >= 1
        if not ok:
            kind = "a string" if key == "partition" else "an integer >= 1"
            raise UserError(f"{where}: slurm.{key}={given!r} must be {kind}")
    return slurm


def _stages(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(stage, str) for stage in value):
        raise UserError(f"{where}: stages must be a list of stage names, e.g. [crt, tau_norm]")
    if value:  # the stage names are looked up only when a study lists stages
        known = _known_stages()
        bad = [stage for stage in value if stage not in known and not _plugin_stage(stage)]
        if bad:
            raise UserError(
                f"{where} lists unknown stage {bad[0]!r}; choose from: {', '.join(known)}"
            )
    return list(value)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _known_stages() -> list[str]:
    """The second stages' names, without importing torch once ``lt_bench.stages`` offers
    ``stage_names()``."""
    import lt_bench.stages as stages

    if hasattr(stages, "stage_names"):
        return list(stages.stage_names())
    return list(stages.STAGES)


def _plugin_stage(name: str) -> bool:
    """Whether a plugin (the study's ``imports:``, an entry point) registered stage ``name``: asked
    only of a name no stage file has, as it imports torch."""
    from lt_bench.stages.base import REGISTRY

    return name in REGISTRY


def _overlap(a: str, b: str) -> bool:
    """Whether two dotted keys set the same value (``method`` covers ``method.name``)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _check_overlaps(study: Study, where: str) -> None:
    """Refuse a key set in two places where one would silently overwrite the other."""
    for key in study.grid:
        for arm in study.arms:
            clash = next((k for k in arm if _overlap(k, key)), None)
            if clash is not None:
                raise UserError(
                    f"{where}: grid key {key!r} is also set by arm {arm}; the grid would "
                    "overwrite the arm's value: set it in the arms or in the grid, not both"
                )
        clash = next((k for k in study.fixed if _overlap(k, key)), None)
        if clash is not None:
            raise UserError(
                f"{where}: grid key {key!r} is also fixed ({clash}: {study.fixed[clash]!r}); the "
                "grid would overwrite the fixed value in every point: keep one of them"
            )
    if study.tune is not None:
        tuned = [*study.tune.space, *(k for s in study.tune.space_by_method.values() for k in s)]
        for key in tuned:
            clash = next((k for k in (*study.grid, *study.tune.at) if _overlap(k, key)), None)
            if clash is not None:
                place = "a grid key" if clash in study.grid else "fixed by tune.at"
                raise UserError(
                    f"{where}: tune space key {key!r} is also {place} ({clash}), so it would "
                    "never be searched; remove it from one of them"
                )


def _command_line_key(override: str) -> str:
    return override.partition("=")[0].strip()


def _check_command_line(study: Study, where: str) -> None:
    """Refuse a command-line override of a key the study varies (grid, arms, tuning space): it
    would silently replace the study's values in every point. ``out_dir`` is ``--runs-dir``."""
    tuned = []
    if study.tune is not None:
        tuned = [*study.tune.space, *(k for s in study.tune.space_by_method.values() for k in s)]
    places = [
        *((key, "a grid key") for key in study.grid),
        *((key, f"set by arm {arm}") for arm in study.arms for key in arm),
        *((key, "searched by tune") for key in tuned),
    ]
    for override in study.overrides:
        key = _command_line_key(override)
        if _overlap(key, "out_dir"):
            raise UserError(
                f"override {override!r}: a sweep's runs go where --runs-dir says; pass "
                "--runs-dir instead"
            )
        clash = next(((k, place) for k, place in places if _overlap(k, key)), None)
        if clash is not None:
            raise UserError(
                f"override {override!r}: {clash[0]!r} is {clash[1]} in {where}, so the override "
                "would replace the values the study varies; edit the study file instead"
            )


def _check_points(study: Study, where: str) -> None:
    """Resolve a point of each arm, of each grid value and of each end of every tuning range
    against the schema (torch-free): a key that is no config key, a value of the wrong type or
    out of its declared range is refused once here, not in every run. (A method's or a data set's
    own options are checked by the engine: their registries import torch.)"""
    from lt_bench.validate import check_schema_values

    first = {key: values[0] for key, values in study.grid.items()}
    examples = [{**arm, **first} for arm in study.arms]
    base = examples[0]
    examples += [{**base, key: value} for key, values in study.grid.items() for value in values]
    if study.tune is not None:
        examples += [{**base, **study.tune.at, **one} for one in _examples(study.tune.space)]
        for method, space in study.tune.space_by_method.items():
            examples += [{**base, "method.name": method, **one} for one in _examples(space)]
    for overrides in examples:
        try:
            cfg = resolve(study, overrides, "runs")
            # The base config's, fixed's and the command line's imports, before the points'
            # names are looked up (the study's own were imported when it was read).
            import_modules(cfg.imports, [study.folder] if study.folder else [])
            check_schema_values(cfg)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None


def _examples(space: dict) -> list[dict]:
    """Single-key draws of a tuning space: both ends of each range, every choice."""
    return [{key: value} for key, spec in space.items() for value in next(iter(spec.values()))]


def parse_tuning(raw: dict, path: Path) -> Tuning:
    """The study's ``tune:`` section, checked: one-line errors naming the key and the fix."""
    where = f"study file {path}: tune"
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping with trials and space")
    _check_keys(raw, TUNE_KEYS, f"{where} has")
    strategy = raw.get("strategy", "random")
    if strategy not in STRATEGIES:
        raise UserError(f"{where}.strategy={strategy!r} must be one of: {', '.join(STRATEGIES)}")
    trials = raw.get("trials", DEFAULT_TRIALS if strategy == "random" else None)
    if strategy == "grid" and trials is not None:
        raise UserError(
            f"{where}.trials is set, but a grid strategy runs every combination of the space's "
            "choice lists; remove tune.trials"
        )
    if strategy == "random" and (not _whole(trials) or not 1 <= trials <= MAX_TRIALS):
        raise UserError(
            f"{where}.trials={trials!r} must be an integer from 1 to {MAX_TRIALS} (trials per arm)"
        )
    seed = raw.get("seed", DEFAULT_TUNE_SEED)
    if not _whole(seed) or seed < 0:
        raise UserError(
            f"{where}.seed={seed!r} must be an integer >= 0 (the trials' training seed)"
        )
    space = _mapping(raw.get("space"), f"{where}.space", "{optim.lr: {log_uniform: [0.01, 0.2]}}")
    by_method = _mapping(
        raw.get("space_by_method"), f"{where}.space_by_method", "{sar: {method.trade_off: ...}}"
    )
    for method, extra in by_method.items():
        by_method[method] = _mapping(
            extra, f"{where}.space_by_method.{method}", "{method.trade_off: {uniform: [0, 1]}}"
        )
    for searched in (space, *by_method.values()):
        for key, spec in searched.items():
            _check_distribution(path, key, spec)
    if strategy == "grid":
        for searched in (space, *by_method.values()):
            for key, spec in searched.items():
                if next(iter(spec)) != "choice":
                    raise UserError(
                        f"{where}: a grid needs a choice list for every key; {key!r} has "
                        f"{next(iter(spec))}: write {{choice: [...]}} or use strategy: random"
                    )
        sizes = [len(spec["choice"]) for spec in (*space.values(),)]
        trials = math.prod(sizes)
        if trials > MAX_TRIALS:
            raise UserError(f"{where}: the grid has {trials} combinations, more than {MAX_TRIALS}")
    at = _mapping(raw.get("at"), f"{where}.at", "{data.ratio: 100}")
    return Tuning(trials, seed, space, by_method, at, strategy)


def _check_distribution(path: Path, key: str, spec) -> None:
    where = f"study file {path}: tune space {key!r}"
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise UserError(
            f"{where} must be one of {', '.join(DISTRIBUTIONS)}, e.g. {{log_uniform: [0.01, 0.2]}}"
        )
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise UserError(f"{where}: choice needs a non-empty list")
        return
    whole = kind == "int_uniform"
    if not (isinstance(args, list) and len(args) == 2 and all(_bound(a, whole) for a in args)):
        hint = (
            " (YAML reads 1e-5 as a string: write 1.0e-5)"
            if any(isinstance(a, str) for a in (args if isinstance(args, list) else []))
            else ""
        )
        numbers = "integers" if whole else "numbers"
        raise UserError(f"{where}: {kind} needs [low, high], two {numbers}{hint}")
    if args[0] > args[1]:
        raise UserError(f"{where}: {kind} needs [low, high] with low <= high")
    if kind == "log_uniform" and args[0] <= 0:
        raise UserError(f"{where}: log_uniform needs low > 0")


def _bound(value, whole: bool) -> bool:
    if whole:
        return _whole(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def combinations(study: Study) -> list[dict]:
    """Every point's overrides: each arm crossed with the grid's product."""
    keys = list(study.grid)
    return [
        {**arm, **dict(zip(keys, values))}
        for arm, values in itertools.product(
            study.arms, itertools.product(*(study.grid[k] for k in keys))
        )
    ]


def _as_overrides(values: dict) -> list[str]:
    # JSON is YAML's flow syntax, so lists, mappings and quoted strings survive OmegaConf's parser.
    return [f"{key}={json.dumps(value, default=str)}" for key, value in values.items()]


def resolve(study: Study, overrides: dict, runs_dir: str | Path) -> DictConfig:
    """The config of one point: base <- fixed <- command line <- the point's overrides; the
    study's name is the runs' tracker experiment (``train.experiment``). The command-line
    overrides are passed as typed, so they parse exactly as ``train``'s do. The study's
    ``imports`` are added to the config's own (after them, each module once)."""
    named = {"train.experiment": study.name}
    cfg = load_config(
        study.base,
        [
            *_as_overrides(named),
            *_as_overrides(study.fixed),
            *study.overrides,
            *_as_overrides(overrides),
            f"out_dir={runs_dir}",
        ],
    )
    if study.imports:
        given = list(cfg.imports)
        cfg.imports = [*given, *(module for module in study.imports if module not in given)]
    return cfg
