"""Second stages on top of any finished run, with the backbone frozen: two-stage decoupling (Kang
et al., ICLR 2020) and nearest class mean. One file per stage, one face (:class:`base.Stage`), one
registry; ``lt-bench retrain RUN --stage NAME`` runs :func:`retrain`.

- ``crt``: re-initialise the linear classifier and retrain it with a class-balanced sampler;
- ``lws``: learn one scale per class on the fixed classifier, class-balanced sampler;
- ``tau_norm``: divide each classifier row by its norm to the power tau and drop the bias, tau
  chosen on a validation split, never on the test set;
- ``ncm``: nearest class mean of centred, L2-normalised training features, by Euclidean distance.

Each follows Decoupling's official code by default (facebookresearch/classifier-balancing; each
stage's file names the files it follows: the class-aware sampler, BatchNorm in train mode while
cRT and LWS train, the stage-2 optimiser and schedule); what differs from it is a named option,
documented as a departure in the stage's docstring and in experiments/README.md.

A stage writes a child run next to its parent (``<parent>__<stage>``) with the parent's schema:
config.yaml (the parent's plus a ``stage`` section holding the name and every option), split.json,
metrics.jsonl, checkpoint.pt, final.json (with ``stage``, the display name, and ``parent``),
per_class.csv, separability.json and features.npz. The parent must be done, its files intact and
its split.json the split its config draws; the child's folder is locked while the stage runs, and
the child ends ``done`` or ``failed`` (with error.log), as a trained run does.

A new stage is one file here: :func:`stage_names` finds it by its file alone, without importing
torch (``lt-bench sweep --status`` lists stages); :func:`get_stage` imports it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pkgutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from lt_bench import atomic
from lt_bench.config import load_config, run_id, to_dict
from lt_bench.errors import UserError
from lt_bench.options import check_options
from lt_bench.rundir import CONFIG, FINAL, SPLIT, RunDir, child_path

if TYPE_CHECKING:
    from lt_bench.setup import Setup
    from lt_bench.stages.base import Stage

NOT_STAGES = ("base",)  # modules of this package that hold no stage


def stage_names() -> list[str]:
    """Every stage's name, sorted: the modules of this package (torch is not imported)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in NOT_STAGES)


def get_stage(name: str) -> type[Stage]:
    """The registered :class:`~lt_bench.stages.base.Stage` subclass of ``name``; an unknown name is
    a one-line UserError with close matches (it never falls through to another stage)."""
    from lt_bench.stages.base import REGISTRY

    known = stage_names()
    for module in [name] if name in known else known:  # unknown: load all, for the message
        importlib.import_module(f"{__name__}.{module}")
    return REGISTRY.get(name)


def stage_options(name: str) -> type:
    """The dataclass of a stage's ``stage.*`` options (types, defaults, declared ranges)."""
    return get_stage(name).Options


def display_name(name: str) -> str:
    """How reports and final.json show a stage ("cRT", "tau-norm"), without importing torch: read
    from the ``display = "..."`` line of its class when its file is not imported yet."""
    module = sys.modules.get(f"{__name__}.{name}")
    if module is None and name in stage_names():
        origin = importlib.util.find_spec(f"{__name__}.{name}").origin
        for node in ast.walk(ast.parse(Path(origin).read_text())):
            if (
                isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["display"]
                and isinstance(node.value, ast.Constant)
            ):
                return node.value.value
    return get_stage(name).display  # imported already, not a literal, or unknown (refused)


def __getattr__(attribute: str):
    """``STAGES`` (name -> display name, torch-free) and ``OPTIONS`` (name -> options dataclass),
    as older code imports them."""
    if attribute == "STAGES":
        return {name: display_name(name) for name in stage_names()}
    if attribute == "OPTIONS":
        return {name: stage_options(name) for name in stage_names()}
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def retrain(
    parent_dir: str | Path, stage: str, overrides: list[str] | tuple[str, ...] = ()
) -> dict:
    """Run ``stage`` on the finished run in ``parent_dir``; return the child's final.json (as it
    is when the child is done already, with the same config). Everything is checked before
    anything is written; then the child's folder is locked for the rest of the stage (a second
    process on the same child is refused at once), and whatever raises from there on leaves the
    child ``failed`` with its error in ``final.json`` and the traceback in ``error.log``. An
    interrupt leaves it ``running``: the next retrain redoes it."""
    stage_class = get_stage(stage)
    parent = RunDir(parent_dir)
    check_parent(parent)
    cfg, options = child_config(parent, stage_class, overrides)
    child = RunDir(parent.path.parent / cfg.name)
    finished = finished_child(child, cfg)
    if finished is not None:
        return finished
    started = time.time()
    setup = frozen_setup(cfg, parent)
    check_split(parent, setup)
    runner = stage_class(stage_class.Options(**options))
    runner.check(setup, cfg)
    with child.lock():
        finished = finished_child(child, cfg)  # another process may have finished it meanwhile
        if finished is not None:
            return finished
        try:
            return run_stage(child, parent, runner, setup, cfg, started)
        except Exception as err:  # the child ends failed, whatever raised
            message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            child.mark_failed(message, run_id(cfg))
            raise


def run_stage(
    child: RunDir, parent: RunDir, runner: Stage, setup: Setup, cfg: DictConfig, started: float
) -> dict:
    """Write the locked child's config and split, mark it running, fit the stage, finish."""
    import torch

    child.remove_temporary_files()  # a killed attempt's half-written files
    child.write_config(cfg)
    child.copy_split_from(parent)
    child.mark_running(run_id(cfg), stage=runner.display, parent=parent.name)
    torch.manual_seed(cfg.seed)
    extra = runner.fit(setup, cfg, child)
    return finish(child, parent, runner, setup, cfg, extra, started)


def finished_child(child: RunDir, cfg: DictConfig) -> dict | None:
    """A done child's final.json when its config is the one asked for (a done child of other
    options is refused, never returned as if it were this one); None when it is to be run."""
    if not child.is_done():
        return None
    child.check_same_config(cfg, "reuse the finished child run")
    return child.final()


def check_parent(parent: RunDir) -> None:
    """Refuse a parent that is not finished or has no weights or config to start from; a damaged
    final.json is named."""
    if (parent / FINAL).exists():
        parent.final()  # a damaged final.json: named, with its fix
    if not parent.is_done():
        raise UserError(
            f"{parent.path} is not a finished run ({FINAL} status done); train it first"
        )
    if not parent.has_config:
        raise UserError(f"{parent.path} has no {CONFIG}; train the parent again")
    if not parent.selected_checkpoint().exists():
        raise UserError(
            f"{parent.path} has no checkpoint.pt to start the stage from; retrain the parent"
        )


# What must agree between the parent's split.json and the split its config draws today.
SPLIT_KEYS = ("ratio", "profile", "seed", "counts", "sha256")


def check_split(parent: RunDir, setup: Setup) -> None:
    """The parent's ``split.json`` must be the split its config draws (``setup.split``): else the
    data, or the code that draws the split, changed since the parent was trained, and the stage
    would train and report on other images than the parent's."""
    path = parent / SPLIT
    if not path.exists():
        raise UserError(f"{path} is missing; train the parent again")
    saved, drawn = parent.split(), setup.split.manifest  # a damaged split.json is named
    differ = [key for key in SPLIT_KEYS if saved.get(key) != drawn.get(key)]
    if differ:
        raise UserError(
            f"{path} does not match the split the parent's config draws ({', '.join(differ)} "
            "differ): the data or the split changed since it was trained; train the parent again"
        )


def child_config(
    parent: RunDir, stage_class: type[Stage], overrides: list[str] | tuple[str, ...]
) -> tuple[DictConfig, dict]:
    """The parent's config plus a ``stage`` section (the name and every option, defaults written
    out), placed beside the parent, then ``overrides``; and the checked stage options."""
    defaults = asdict(stage_class.Options())
    cfg = load_config(
        parent / CONFIG,
        [
            f"stage.name={stage_class.name}",
            *(f"stage.{key}={json.dumps(value)}" for key, value in defaults.items()),
            f"out_dir={parent.path.parent}",
            f"name={child_path(parent.path, stage_class.name).name}",
            *overrides,
        ],
    )
    options = {k: v for k, v in to_dict(cfg.stage).items() if k != "name"}
    check_options(stage_class.Options, options, "stage.", f"stage {stage_class.name}")
    return cfg, options


def frozen_setup(cfg: DictConfig, parent: RunDir) -> Setup:
    """The run built from ``cfg`` with the parent's selected weights, in eval mode (BatchNorm
    statistics included) and the backbone's weights frozen (cRT and LWS still update BatchNorm's
    running statistics by default, as the official code: :func:`base.train_head`)."""
    from lt_bench.predict import load_weights
    from lt_bench.setup import build

    setup = build(cfg)
    load_weights(setup, parent.selected_checkpoint(), f"train the parent {parent.path} again")
    setup.network.eval()
    for p in setup.network.backbone.parameters():
        p.requires_grad_(False)
    return setup


def finish(
    child: RunDir,
    parent: RunDir,
    runner: Stage,
    setup: Setup,
    cfg: DictConfig,
    extra: dict,
    started: float,
) -> dict:
    """Save the child's checkpoint, evaluate it on the test set, write and return final.json."""
    import torch

    from lt_bench.predict import final_evaluation
    from lt_bench.setup import environment

    network = setup.network
    checkpoint = {
        "epoch": 0,
        "network": network.state_dict(),
        "method": setup.method.state_dict(),
        "stage": runner.name,
    }
    with atomic.atomic_path(child.checkpoint) as tmp:
        torch.save(checkpoint, tmp)
    metrics, arrays = final_evaluation(child, network, setup.method, setup, cfg)
    final = {
        "status": "done",
        "run_id": run_id(cfg),
        "stage": runner.display,
        "parent": parent.name,
        **metrics,
        **extra,
        "train_images": int(len(setup.split.train)),
        "test_images": int(len(arrays["labels"])),
        "classifier": network.classifier_info() if hasattr(network, "classifier_info") else None,
        "device": str(setup.device),
        "precision": setup.precision,
        "warnings": [],
        "wall_time_s": time.time() - started,
        "versions": environment(),
    }
    child.write_final(final)
    return final
