"""A study file: a base config times a grid of overrides (and, optionally, a tuning section).

A study file (``experiments/studies/*.yaml``)::

    name: mnist_lt_demo
    base: ../mnist_lt.yaml              # relative to the study file
    fixed: {optim.epochs: 12}           # overrides for every point (optional)
    arms:                               # optional: settings that are not a product, each crossed
      - {method.name: none}             # with the grid (default: one empty arm)
      - {method.name: sar, method.trade_off: 0}
    grid:                               # the product of these lists
      method.name: [none, center, prototype, etf, sar]
      data.ratio: [10, 100]
      seed: [0, 1, 2]
    slurm: {partition: gpu, time_min: 240, gpus: 1, cpus: 8}   # optional
    stages: [crt, tau_norm]             # optional second stages on every finished run
    tune:                               # optional: equal-budget random search (lt_bench.study.tune)
      trials: 8
      space: {optim.lr: {log_uniform: [0.01, 0.2]}}

Reading a study needs no torch: ``lt-bench sweep --status`` stays fast.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig

from lt_bench.config import load_config
from lt_bench.errors import UserError

STUDY_KEYS = ("name", "base", "fixed", "arms", "grid", "slurm", "stages", "tune")
TUNE_KEYS = ("trials", "seed", "space", "space_by_method", "at")
DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")


@dataclass
class Tuning:
    """A study's ``tune:`` section: ``trials`` random draws per arm from the space."""

    trials: int
    seed: int = 0
    space: dict = field(default_factory=dict)
    space_by_method: dict = field(default_factory=dict)
    at: dict = field(default_factory=dict)


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


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every mistake is a one-line UserError naming the fix."""
    path = Path(path)
    raw = _read_yaml(path)
    unknown = set(raw) - set(STUDY_KEYS)
    if unknown:
        raise UserError(
            f"study file {path} has unknown keys {sorted(unknown)}; allowed: {', '.join(STUDY_KEYS)}"
        )
    arms = raw.get("arms") or [{}]
    if not isinstance(arms, list) or not all(isinstance(arm, dict) for arm in arms):
        raise UserError(
            f"study file {path}: arms must be a list of mappings, e.g. - {{method.name: sar}}"
        )
    stages = list(raw.get("stages") or [])
    if stages:  # the stage names are looked up only when a study lists stages
        known = _known_stages()
        bad = [stage for stage in stages if stage not in known]
        if bad:
            raise UserError(
                f"study file {path} lists unknown stage {bad[0]!r}; choose from: {', '.join(known)}"
            )
    grid = raw.get("grid") or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"study grid key {key!r} needs a non-empty list of values")
    return Study(
        raw.get("name", path.stem),
        (path.parent / raw["base"]).resolve() if raw.get("base") else None,
        raw.get("fixed") or {},
        grid,
        arms,
        raw.get("slurm") or {},
        stages,
        parse_tuning(raw["tune"], path) if raw.get("tune") is not None else None,
    )


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


def _known_stages() -> list[str]:
    """The second stages' names, without importing torch once ``lt_bench.stages`` offers
    ``stage_names()``."""
    import lt_bench.stages as stages

    if hasattr(stages, "stage_names"):
        return list(stages.stage_names())
    return list(stages.STAGES)


def parse_tuning(raw: dict, path: Path) -> Tuning:
    """The study's ``tune:`` section, checked: one-line errors naming the key and the fix."""
    if not isinstance(raw, dict):
        raise UserError(f"study file {path}: tune must be a mapping with trials and space")
    unknown = set(raw) - set(TUNE_KEYS)
    if unknown:
        raise UserError(
            f"study file {path}: tune has unknown keys {sorted(unknown)}; allowed: {', '.join(TUNE_KEYS)}"
        )
    if not isinstance(raw.get("at") or {}, dict):
        raise UserError(f"study file {path}: tune.at must be a mapping, e.g. {{data.ratio: 100}}")
    trials = raw.get("trials")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise UserError(f"study file {path}: tune.trials={trials!r} must be an integer >= 1")
    spaces = [raw.get("space") or {}, *(raw.get("space_by_method") or {}).values()]
    for space in spaces:
        for key, spec in space.items():
            _check_distribution(path, key, spec)
    return Tuning(
        trials,
        int(raw.get("seed", 0)),
        raw.get("space") or {},
        raw.get("space_by_method") or {},
        raw.get("at") or {},
    )


def _check_distribution(path: Path, key: str, spec) -> None:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise UserError(
            f"study file {path}: tune space {key!r} must be one of {', '.join(DISTRIBUTIONS)}, "
            "e.g. {log_uniform: [0.01, 0.2]}"
        )
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise UserError(f"study file {path}: tune space {key!r}: choice needs a non-empty list")
        return
    if not (isinstance(args, list) and len(args) == 2 and args[0] <= args[1]):
        raise UserError(
            f"study file {path}: tune space {key!r}: {kind} needs [low, high] with low <= high"
        )
    if kind == "log_uniform" and args[0] <= 0:
        raise UserError(f"study file {path}: tune space {key!r}: log_uniform needs low > 0")


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
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def resolve(study: Study, overrides: dict, runs_dir: str | Path) -> DictConfig:
    """The config of one point: base <- fixed <- the point's overrides; the study's name is the
    runs' tracker experiment (``train.experiment``)."""
    named = {"train.experiment": study.name}
    return load_config(
        study.base,
        [
            *_as_overrides(named),
            *_as_overrides(study.fixed),
            *_as_overrides(overrides),
            f"out_dir={runs_dir}",
        ],
    )
