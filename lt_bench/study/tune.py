"""Equal-budget search with common random numbers, selected on validation only (as DomainBed
does for its field).

A study's ``tune:`` section::

    tune:
      trials: 8                 # per arm, the same for every arm (default 8)
      seed: 1000                # the trials' training seed (default 1000); no final may use it
      strategy: random          # random (default) | grid (every combination of choice lists)
      space:                    # shared by every arm
        optim.lr: {log_uniform: [0.01, 0.2]}
      space_by_method:          # added for arms of that method
        sar: {method.trade_off: {log_uniform: [0.01, 1.0]}}
      at: {data.ratio: 100}     # optional: tune at these values; the choice serves every grid value

**Common random numbers.** Trial k of every arm gets the same value of every key the arms share
(``space``): a key's value is a pure function of the study name, the key and k, drawn from its own
stream. A method's own keys (``space_by_method``) use one stream per method, shared by every arm
of that method (``sar`` and ``sar + balanced_softmax`` see the same trade-offs). So a difference
between two arms' trial k comes from the method alone, never from one arm's luckier learning rate;
and adding a key to the space leaves the other keys' draws unchanged. ``grid`` runs every
combination of the keys' ``choice`` lists, in the same order for every arm.

A key an arm sets itself (``sar`` with ``method.trade_off: 0``) is not searched in that arm.
An *arm* is one combination of the study's arms and grid values other than the seed (and the
keys ``at`` fixes for the trials: with ``at: {data.ratio: 100}`` the values chosen at ratio 100
serve every ratio of the grid). Trials run under ``<runs>/tune/`` with the training seed
``tune.seed``, which no final run may use (a study whose finals would is refused): the finals are
fresh seeds, never the run the choice was made on. Each trial is scored by the balanced accuracy on
the validation set (``data.val_per_class`` images of every class, or the data set's val list;
never the test set) of the epoch the study reports (the last, unless the study selects
``best_val``). Then the grid's seeds run with each arm's best values (ties: the earlier trial), and
each final run's ``final.json["tuned"]`` records the trial, its values, its score and its seed.
``tune/tuning.json`` keeps the whole search: space, strategy, every trial's values and score, the
choice and the budget (trials x epochs) of each arm, which must be equal across arms; ``tuning.md``
lines the trials up by index across arms, shows each arm's spread over its trials, and flags a
choice on the edge of the search space.

Trials of an arm whose draws are equal (an arm whose space is empty because it sets every searched
key itself, or a small ``choice``) resolve to one config, hence one run folder: that run is trained
once and its score serves each of those trials (a rerun of the same config would give the same
numbers), so the record still lists ``trials`` draws per arm and the budget counts draws.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lt_bench import atomic
from lt_bench.config import run_id
from lt_bench.errors import UserError
from lt_bench.rundir import RunDir
from lt_bench.study.file import DISTRIBUTIONS, Study, Tuning, combinations, point_labels, resolve
from lt_bench.study.points import Point

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "DISTRIBUTIONS",
    "Trial",
    "Tuning",
    "arm_key",
    "arm_labels",
    "choose",
    "draw",
    "edges",
    "grid_values",
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


def _stream(*parts) -> np.random.Generator:
    import numpy as np  # only a tuned study pays for numpy

    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _sample(spec: dict, rng):
    kind, args = next(iter(spec.items()))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "int_uniform":
        return int(rng.integers(args[0], args[1], endpoint=True))
    return args[int(rng.integers(len(args)))]


def draw(study_name: str, trial: int, space: dict, method: str, own: dict | None = None) -> dict:
    """Trial ``trial``'s values, key by key, each from its own stream: a shared key's stream is
    (study, key, trial), the same for every arm; a key of ``own`` (the method's space) uses
    (study, method, key, trial), the same for every arm of that method."""
    own = own or {}
    return {
        key: _sample(space[key], _stream(study_name, method, key, trial))
        if key in own
        else _sample(space[key], _stream(study_name, key, trial))
        for key in sorted(space)
    }


def grid_values(space: dict) -> list[dict]:
    """Every combination of the space's ``choice`` lists, keys sorted, last key fastest."""
    keys = sorted(space)
    return [
        dict(zip(keys, combo)) for combo in itertools.product(*(space[k]["choice"] for k in keys))
    ]


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
    _check_fresh_seeds(study, runs_dir)
    trials, budgets = [], {}
    for key, arm in arms.items():
        method = methods[key]
        own = tuning.space_by_method.get(method, {})
        space = {**tuning.space, **own}
        space = {k: v for k, v in space.items() if k not in arm}  # an arm's own values stay fixed
        if tuning.strategy == "grid":
            draws = grid_values(space)
        else:
            draws = [draw(study.name, n, space, method, own) for n in range(tuning.trials)]
        budgets[key] = 0
        for number, values in enumerate(draws):
            overrides = {**arm, **tuning.at, **values}
            overrides.update({"seed": tuning.seed, "train.select": "best_val"})
            cfg = resolve(study, overrides, tuning_dir(runs_dir))
            if cfg.data.val_per_class == 0:
                _check_validation(cfg)
            budgets[key] += cfg.optim.epochs
            trials.append(Trial(key, arm, number, values, Point(overrides, cfg)))
    if len(set(budgets.values())) > 1:
        shown = "; ".join(f"{k}: {b} epochs" for k, b in budgets.items())
        raise UserError(
            f"study {study.name}: tuning budgets differ between arms ({shown}); give every arm "
            "the same optim.epochs and keep optim.epochs out of the search space"
        )
    return trials


def _check_validation(cfg) -> None:
    """Tuning selects on validation: refuse ``data.val_per_class=0`` unless the data set has its
    own val list (only then does this import the data registry, hence torch)."""
    from lt_bench.data import DATASETS
    from lt_bench.validate import check_validation

    try:
        check_validation(cfg, DATASETS.get(cfg.data.name))
    except UserError as err:
        raise UserError(f"tuning: {err}") from None


def _check_fresh_seeds(study: Study, runs_dir: str | Path) -> None:
    """Finals on seeds the tuning never used: refuse a study whose final runs train with the
    trials' seed (its seed-``tune.seed`` final would be the chosen trial itself)."""
    base_seed = None
    for overrides in combinations(study):
        seed = overrides.get("seed")
        if seed is None:
            base_seed = resolve(study, {}, runs_dir).seed if base_seed is None else base_seed
            seed = base_seed
        if seed == study.tune.seed:
            raise UserError(
                f"study {study.name}: final runs use seed {seed}, the tuning trials' seed "
                f"(tune.seed); finals must be seeds the tuning never used: set tune.seed to a "
                "seed outside the grid's seeds (default 1000)"
            )


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


def arm_labels(study: Study) -> dict[str, str]:
    """Each labelled arm's display name (the study's ``label``), by its :func:`arm_key`."""
    return {
        arm_key(overrides, study.tune.at): label
        for overrides, label in zip(combinations(study), point_labels(study))
        if label is not None
    }


def write_record(
    study: Study, runs_dir: str | Path, trials: list[Trial], scores: dict, chosen
) -> dict:
    """``<runs_dir>/tune/tuning.json``: the space, every trial, each arm's choice and budget,
    and each arm's display name where the study gives one (``label``)."""
    labels = arm_labels(study)
    arms = {}
    for i, trial in enumerate(trials):
        arm = arms.setdefault(
            trial.arm,
            {
                "arm": trial.arm,
                **({"label": labels[trial.arm]} if trial.arm in labels else {}),
                "method": trial.point.cfg.method.name,
                "trials": [],
                "budget_epochs": 0,
                "chosen": None,
            },
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
            "trial_seed": study.tune.seed,
            "val_balanced": scores[trials.index(trial)],
        }
    record = {
        "study": study.name,
        "strategy": study.tune.strategy,
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


EDGE = 0.1  # a chosen value in the outer 10% of its range (log scale for log_uniform) is flagged


def edges(values: dict, record: dict, method: str | None = None) -> list[str]:
    """The chosen values that sit on the edge of the search space (``method``'s own space
    included): the best may lie outside it."""
    specs = {**record["space"], **record["space_by_method"].get(method, {})}
    flagged = []
    for key, value in values.items():
        kind, args = next(iter(specs.get(key, {"choice": []}).items()))
        if kind in ("log_uniform", "uniform"):
            scale = math.log if kind == "log_uniform" else float
            low, high = scale(args[0]), scale(args[1])
            where = (scale(value) - low) / (high - low) if high > low else 0.5
            if where < EDGE or where > 1 - EDGE:
                end = "low" if where < EDGE else "high"
                flagged.append(f"{key}={_shown(value)} at the {end} end of [{args[0]}, {args[1]}]")
        elif kind == "int_uniform" and args[1] > args[0] and value in args:
            flagged.append(f"{key}={value} at an end of [{args[0]}, {args[1]}]")
        elif kind == "choice" and len(args) >= 3 and all(_number(a) for a in args):
            if value in (min(args), max(args)):
                flagged.append(f"{key}={value} at an end of {args}")
    return flagged


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def record_source(run_dir: str | Path, choice: dict) -> None:
    """Note in a finished final run's ``final.json`` where its tuned values came from."""
    run = RunDir(run_dir)
    if run.status() == "done" and run.final().get("tuned") != choice:
        run.update_final(tuned=choice)


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def record_frame(record: dict) -> pd.DataFrame:
    """Every trial as one CSV row: arm, trial, values, validation score, chosen, the trial seed."""
    import pandas as pd

    rows = []
    for arm in record["arms"]:
        chosen = (arm.get("chosen") or {}).get("trial")
        for trial in arm["trials"]:
            rows.append(
                {
                    "arm": arm["arm"],
                    "label": arm.get("label"),
                    "trial": trial["trial"],
                    **trial["values"],
                    "val_balanced": trial["val_balanced"],
                    "chosen": trial["trial"] == chosen,
                    "trial_seed": record["seed"],
                    "budget_epochs": arm["budget_epochs"],
                    "run_dir": trial["run_dir"],
                }
            )
    return pd.DataFrame(rows)


def record_markdown(record: dict) -> str:
    """tuning.md: the search, each arm's choice with its spread over trials and edge flags, the
    shared draws per trial, then every arm's scores lined up by trial index."""
    lines = [_record_summary(record), "", _record_space(record), "", *_choices(record), ""]
    lines += [*_shared_draws(record), "", *_scores_by_trial(record), ""]
    budgets = {arm["budget_epochs"] for arm in record["arms"]}
    lines.append(
        f"Budget per arm: {', '.join(map(str, sorted(budgets)))} epochs (equal: "
        f"{len(budgets) == 1}). Bold: the chosen trial."
    )
    return "\n".join(lines) + "\n"


def _scores(arm: dict) -> list[float]:
    return [t["val_balanced"] for t in arm["trials"] if t["val_balanced"] is not None]


def _choices(record: dict) -> list[str]:
    lines = [
        "| Arm | Chosen trial | Chosen values | Val. balanced acc. | Spread over trials (min – max) | Edge of the space |",
        "|---|---|---|---|---|---|",
    ]
    for arm in record["arms"]:
        chosen, scores = arm.get("chosen"), _scores(arm)
        spread = f"{min(scores):.4f} – {max(scores):.4f}" if scores else "–"
        if chosen is None:
            lines.append(f"| {_arm_name(arm)} | – | – | – | {spread} | – |")
            continue
        values = ", ".join(f"{k}={_shown(v)}" for k, v in chosen["values"].items()) or "–"
        flagged = "; ".join(edges(chosen["values"], record, _method(arm))) or "–"
        lines.append(
            f"| {_arm_name(arm)} | {chosen['trial']} | {values} | {chosen['val_balanced']:.4f} | "
            f"{spread} | {flagged} |"
        )
    return lines


def _arm_name(arm: dict) -> str:
    """The arm's display name (the study's ``label``) with its overrides, or its overrides."""
    label = arm.get("label")
    return f"{label} ({arm['arm']})" if label else arm["arm"]


def _method(arm: dict) -> str | None:
    """An arm's method: recorded since the record has it, else read from the arm's name."""
    if "method" in arm:
        return arm["method"]
    for part in arm["arm"].split(", "):
        if part.startswith("method.name="):
            return part.partition("=")[2]
    return None


def _shared_keys(record: dict) -> list[str]:
    return sorted(record["space"])


def _shared_draws(record: dict) -> list[str]:
    """The shared values of each trial index: the same for every arm that searches the key."""
    keys = _shared_keys(record)
    if not keys:
        return []
    per_trial: dict[int, dict] = {}
    for arm in record["arms"]:
        for trial in arm["trials"]:
            row = per_trial.setdefault(trial["trial"], {})
            for key in keys:
                if key in trial["values"]:
                    row.setdefault(key, trial["values"][key])
    lines = [
        "Shared draws (common random numbers: trial k has these values in every arm that searches the key):",
        "",
        "| Trial | " + " | ".join(f"`{k}`" for k in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for number in sorted(per_trial):
        row = per_trial[number]
        lines.append(f"| {number} | " + " | ".join(_shown(row.get(k, "–")) for k in keys) + " |")
    return lines


def _scores_by_trial(record: dict) -> list[str]:
    numbers = sorted({t["trial"] for arm in record["arms"] for t in arm["trials"]})
    shared = set(_shared_keys(record))
    lines = [
        "Validation balanced accuracy of every trial, by trial index (a method's own values in brackets):",
        "",
        "| Arm | " + " | ".join(str(n) for n in numbers) + " |",
        "|---|" + "---|" * len(numbers),
    ]
    for arm in record["arms"]:
        chosen = (arm.get("chosen") or {}).get("trial")
        cells = {}
        for trial in arm["trials"]:
            score = "–" if trial["val_balanced"] is None else f"{trial['val_balanced']:.4f}"
            own = ", ".join(
                f"{k.rpartition('.')[2]}={_shown(v)}"
                for k, v in trial["values"].items()
                if k not in shared
            )
            cell = f"{score} ({own})" if own else score
            cells[trial["trial"]] = f"**{cell}**" if trial["trial"] == chosen else cell
        lines.append(f"| {_arm_name(arm)} | " + " | ".join(cells.get(n, "–") for n in numbers) + " |")
    return lines


def _record_summary(record: dict) -> str:
    strategy = record.get("strategy", "random")
    kind = (
        "Grid search (every combination of the choice lists)"
        if strategy == "grid"
        else "Random search with common random numbers (trial k draws the same shared values in every arm)"
    )
    return (
        f"{kind}, {record['trials_per_arm']} trials per arm, training seed {record['seed']} "
        "(no final run uses it)"
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
