"""Equal-budget random search, selected on validation only (as DomainBed does for its field).

A study's ``tune:`` section::

    tune:
      trials: 8                 # per arm, the same for every arm
      seed: 0                   # the training seed of the trials
      space:                    # shared by every arm
        optim.lr: {log_uniform: [0.01, 0.2]}
      space_by_method:          # added for arms of that method
        sar: {method.trade_off: {log_uniform: [0.01, 1.0]}}
      at: {data.ratio: 100}     # optional: tune at these values; the choice serves every grid value

A key an arm sets itself (``sar`` with ``method.trade_off: 0``) is not searched in that arm.
An *arm* is one combination of the study's arms and grid values other than the seed (and the
keys ``at`` fixes for the trials: with ``at: {data.ratio: 100}`` the values chosen at ratio 100
serve every ratio of the grid). A study first runs ``trials`` random draws per arm under
``<runs>/tune/``; a draw is a pure function of the study name, the arm and the trial number, so
reruns are idempotent. Each trial is scored by the balanced accuracy on the validation set (the
data set's val list, or train images the long-tailed split left over; never the test set) of the
epoch the study reports (the last, unless the study selects ``best_val``). Then the grid's seeds
run with each arm's best values (ties: the earlier trial), and each final run's ``final.json``
records where its values came from. ``tune/tuning.json`` keeps the whole search: space, every
trial's values and score, the choice and the budget (trials x epochs) of each arm, which must be
equal across arms.

Trials of an arm whose draws are equal (an arm whose space is empty because it sets every searched
key itself, or a small ``choice``) resolve to one config, hence one run folder: that run is trained
once and its score serves each of those trials (a rerun of the same config would give the same
numbers), so the record still lists ``trials`` draws per arm and the budget counts draws.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lt_bench import atomic
from lt_bench.config import run_id
from lt_bench.errors import UserError
from lt_bench.rundir import RunDir
from lt_bench.study.file import DISTRIBUTIONS, Study, Tuning, combinations, resolve
from lt_bench.study.points import Point

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DISTRIBUTIONS",
    "Trial",
    "Tuning",
    "arm_key",
    "choose",
    "draw",
    "record_frame",
    "record_markdown",
    "record_source",
    "trial_points",
    "trial_score",
    "tuning_dir",
    "write_record",
]


def arm_key(overrides: dict, at: dict | None = None) -> str:
    """An arm's name: its overrides other than the seed and the ``at`` keys, as ``key=value``."""
    shown = (
        f"{k}={v if isinstance(v, str) else json.dumps(v)}"
        for k, v in sorted(overrides.items())
        if k != "seed" and k not in (at or {})
    )
    return ", ".join(shown) or "all"


def draw(study_name: str, arm: str, trial: int, space: dict) -> dict:
    """One trial's values: a pure function of the study, the arm and the trial number."""
    import numpy as np  # only a tuned study pays for numpy

    digest = hashlib.sha256(f"{study_name}|{arm}|{trial}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    values = {}
    for key in sorted(space):
        kind, args = next(iter(space[key].items()))
        if kind == "log_uniform":
            values[key] = float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
        elif kind == "uniform":
            values[key] = float(rng.uniform(args[0], args[1]))
        elif kind == "int_uniform":
            values[key] = int(rng.integers(args[0], args[1], endpoint=True))
        else:
            values[key] = args[int(rng.integers(len(args)))]
    return values


@dataclass
class Trial:
    arm: str
    arm_overrides: dict
    number: int
    values: dict
    point: Point


def tuning_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / "tune"


def trial_points(study: Study, runs_dir: str | Path) -> list[Trial]:
    """Every arm's ``trials`` draws as points under ``<runs_dir>/tune``; refuses unequal budgets.
    Equal draws of an arm give points with one run folder (launched once: :func:`points.unique`)."""
    tuning: Tuning = study.tune
    arms: dict[str, dict] = {}
    for overrides in combinations(study):
        arm = {k: v for k, v in overrides.items() if k != "seed" and k not in tuning.at}
        arms.setdefault(arm_key(overrides, tuning.at), arm)
    methods = {key: resolve(study, arm, runs_dir).method.name for key, arm in arms.items()}
    unused = sorted(set(tuning.space_by_method) - set(methods.values()))
    if unused:
        raise UserError(
            f"study {study.name}: tune.space_by_method names method {unused[0]!r}, which no arm "
            f"uses (the arms' methods: {', '.join(sorted(set(methods.values())))})"
        )
    trials, budgets = [], {}
    for key, arm in arms.items():
        method = methods[key]
        space = {**tuning.space, **tuning.space_by_method.get(method, {})}
        space = {k: v for k, v in space.items() if k not in arm}  # an arm's own values stay fixed
        budgets[key] = 0
        for number in range(tuning.trials):
            values = draw(study.name, key, number, space)
            overrides = {**arm, **tuning.at, **values}
            overrides.update({"seed": tuning.seed, "train.select": "best_val"})
            cfg = resolve(study, overrides, tuning_dir(runs_dir))
            budgets[key] += cfg.optim.epochs
            trials.append(Trial(key, arm, number, values, Point(overrides, cfg)))
    if len(set(budgets.values())) > 1:
        shown = "; ".join(f"{k}: {b} epochs" for k, b in budgets.items())
        raise UserError(
            f"study {study.name}: tuning budgets differ between arms ({shown}); give every arm "
            "the same optim.epochs and keep optim.epochs out of the search space"
        )
    return trials


def trial_score(run_dir: str | Path, select: str) -> float | None:
    """A finished trial's validation balanced accuracy at the epoch the study reports."""
    run = RunDir(run_dir)
    if run.status() != "done":
        return None
    if select == "best_val":
        return run.final()["selection"]["val_balanced"]
    return run.metrics()[-1]["val/balanced"]


def choose(trials: list[Trial], scores: dict) -> dict[str, Trial] | None:
    """Each arm's trial with the best validation score (ties: the earlier trial); None until every
    trial has a score. ``scores`` maps trial index in ``trials`` to its score. Test metrics are
    never read."""
    if any(scores.get(i) is None for i in range(len(trials))):
        return None
    best: dict[str, int] = {}
    for i, trial in enumerate(trials):
        if trial.arm not in best or scores[i] > scores[best[trial.arm]]:
            best[trial.arm] = i
    return {arm: trials[i] for arm, i in best.items()}


def write_record(
    study: Study, runs_dir: str | Path, trials: list[Trial], scores: dict, chosen
) -> dict:
    """``<runs_dir>/tune/tuning.json``: the space, every trial, each arm's choice and budget."""
    arms = {}
    for i, trial in enumerate(trials):
        arm = arms.setdefault(
            trial.arm, {"arm": trial.arm, "trials": [], "budget_epochs": 0, "chosen": None}
        )
        arm["budget_epochs"] += trial.point.cfg.optim.epochs
        arm["trials"].append(
            {
                "trial": trial.number,
                "values": trial.values,
                "run_dir": trial.point.run_dir.name,
                "run_id": run_id(trial.point.cfg),
                "val_balanced": scores.get(i),
            }
        )
    for key, trial in (chosen or {}).items():
        arms[key]["chosen"] = {
            "trial": trial.number,
            "values": trial.values,
            "run_id": run_id(trial.point.cfg),
            "val_balanced": scores[trials.index(trial)],
        }
    record = {
        "study": study.name,
        "trials_per_arm": study.tune.trials,
        "seed": study.tune.seed,
        "space": study.tune.space,
        "space_by_method": study.tune.space_by_method,
        "at": study.tune.at,
        "selected_on": "validation balanced accuracy (never the test set)",
        "arms": list(arms.values()),
    }
    atomic.write_json(tuning_dir(runs_dir) / "tuning.json", record)
    return record


def record_source(run_dir: str | Path, choice: dict) -> None:
    """Note in a finished final run's ``final.json`` where its tuned values came from."""
    run = RunDir(run_dir)
    if run.status() == "done" and run.final().get("tuned") != choice:
        run.update_final(tuned=choice)


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def record_frame(record: dict) -> pd.DataFrame:
    """Every trial as one CSV row: arm, trial, values, validation score, chosen."""
    import pandas as pd

    rows = []
    for arm in record["arms"]:
        chosen = (arm.get("chosen") or {}).get("trial")
        for trial in arm["trials"]:
            rows.append(
                {
                    "arm": arm["arm"],
                    "trial": trial["trial"],
                    **trial["values"],
                    "val_balanced": trial["val_balanced"],
                    "chosen": trial["trial"] == chosen,
                    "budget_epochs": arm["budget_epochs"],
                    "run_dir": trial["run_dir"],
                }
            )
    return pd.DataFrame(rows)


def record_markdown(record: dict) -> str:
    """tuning.md: the space, the budget per arm, every trial, and each arm's choice."""
    lines = [_record_summary(record), "", _record_space(record), ""]
    lines += [
        "| Arm | Trial | Values | Val. balanced acc. | Budget (epochs) |",
        "|---|---|---|---|---|",
    ]
    for arm in record["arms"]:
        chosen = (arm.get("chosen") or {}).get("trial")
        for trial in arm["trials"]:
            values = ", ".join(f"{k}={_shown(v)}" for k, v in trial["values"].items())
            score = "–" if trial["val_balanced"] is None else f"{trial['val_balanced']:.4f}"
            mark = "**" if trial["trial"] == chosen else ""
            lines.append(
                f"| {arm['arm']} | {trial['trial']} | {mark}{values}{mark} | {mark}{score}{mark} | "
                f"{arm['budget_epochs']} |"
            )
    budgets = {arm["budget_epochs"] for arm in record["arms"]}
    lines += [
        "",
        f"Budget per arm: {', '.join(map(str, sorted(budgets)))} epochs (equal: {len(budgets) == 1}). Bold: the chosen trial.",
    ]
    return "\n".join(lines) + "\n"


def _record_summary(record: dict) -> str:
    return (
        f"Random search, {record['trials_per_arm']} trials per arm, training seed "
        f"{record['seed']}"
        + "".join(f", at {k}={v}" for k, v in (record.get("at") or {}).items())
        + f", selected on {record['selected_on']}; the chosen values serve every run of the arm."
    )


def _record_space(record: dict) -> str:
    return (
        "Space: "
        + "; ".join(f"`{k}` {json.dumps(v)}" for k, v in record["space"].items())
        + "".join(
            f"; for {method}: " + "; ".join(f"`{k}` {json.dumps(v)}" for k, v in extra.items())
            for method, extra in record["space_by_method"].items()
        )
    )
