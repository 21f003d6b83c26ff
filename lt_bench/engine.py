"""The training loop, read top to bottom: :func:`train` runs the epochs, :func:`train_one_epoch`
the steps; checkpoint save and resume sit beside them.

What the loop steps with is built by :mod:`lt_bench.setup` (data, network, method, base loss, and
one optimizer and schedule for every method); the final evaluation is :mod:`lt_bench.predict`'s;
the run directory's files are :mod:`lt_bench.rundir`'s. A method (the regularizer) only adds loss
terms, so every method is trained by exactly this loop.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig

from lt_bench import atomic, distributed
from lt_bench.config import resolved, run_id
from lt_bench.errors import UserError, one_line
from lt_bench.eval.accuracy import summarize
from lt_bench.failpoints import failpoint
from lt_bench.methods import Regularizer, StepContext
from lt_bench.predict import balanced_accuracy, final_evaluation, predict_all
from lt_bench.progress import Progress
from lt_bench.rundir import RunDir, run_path
from lt_bench.setup import Loop, Setup, build, build_loop, config_warnings, environment
from lt_bench.trackers import Trackers
from lt_bench.validate import validate


class NonFiniteLoss(UserError):
    """A loss term became NaN or infinite."""


def train(
    cfg: DictConfig,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    force: bool = False,
) -> dict:
    """Train one run and write its directory; return the final metrics (``final.json``).

    The config is validated and the data, network, method and loss are built before anything is
    written; then the run's folder is locked for the rest of the run (a second process on the same
    run is refused at once), and whatever raises from there on leaves the run ``failed`` with its
    error in ``final.json`` and the traceback in ``error.log``, never ``running``. An interrupt
    (Ctrl-C; in a sweep worker SIGTERM too) leaves it resumable. ``force`` trains from scratch:
    an existing run folder (and its second stages') is first moved aside, never deleted
    (:func:`move_run_aside`)."""
    started = time.time()
    run = RunDir(run_path(cfg))
    validate(cfg)
    if force and resume:
        raise UserError("--force trains from scratch, --resume continues a run; pass one of them")
    if force and distributed.is_main_process_of_launch():  # one process moves, before rendezvous
        move_run_aside(run)
    finished = None if force else existing_run(cfg, run, resume)
    if finished is not None:  # done already, with the same config: a repeat launch is a no-op
        return finished
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.train.threads)  # the run's arithmetic, whatever launched it
    try:
        return _train_locked(cfg, run, resume, started, on_epoch_end)
    finally:
        torch.set_num_threads(threads)  # an in-process caller is left as it was


def _train_locked(cfg: DictConfig, run: RunDir, resume: bool, started: float, on_epoch_end):
    """Build, lock the run folder, train; a failure ends the run ``failed`` with its error."""
    setup = build(cfg)  # data, network, method, base loss: nothing is written yet
    main = distributed.rank() == 0  # only rank 0 writes the run directory
    with run.lock() if main else contextlib.nullcontext():
        finished = existing_run(cfg, run, resume)  # another process may have finished it meanwhile
        if finished is not None:
            return finished
        try:
            return train_epochs(cfg, run, setup, resume, started, on_epoch_end)
        except Exception as err:  # the run ends failed, whatever raised
            if main:
                message = one_line(err)
                message = message if isinstance(err, UserError) else f"{type(err).__name__}: {message}"
                run.mark_failed(message, run_id(cfg))
            raise


def train_epochs(
    cfg, run: RunDir, setup: Setup, resume: bool, started: float, on_epoch_end=None
) -> dict:
    """The epochs, the model selection and the final evaluation of a locked run."""
    loop = build_loop(cfg, setup)
    main = distributed.rank() == 0
    val = None  # select the last epoch, or the best on validation images; never on the test set
    if cfg.train.select == "best_val":
        val = setup.split.require_validation("train.select=best_val"), setup.split.validation_described
    if resume and run.split():
        run.check_split(setup.split.manifest)
    start_epoch, history = resume_from_checkpoint(run, setup, loop) if resume else (0, [])
    if main:
        open_run(run, cfg, setup, fresh=start_epoch == 0)
    trackers = Trackers(cfg, run.path, start_epoch, enabled=main)  # TensorBoard, MLflow
    # The run folder named first, then a bar on a terminal or a line an epoch in a log.
    progress = Progress(cfg, run.path, start_epoch, len(setup.split.train), setup.device, main)
    try:
        for epoch in range(start_epoch, cfg.optim.epochs):
            row = train_one_epoch(epoch, setup, loop, progress)
            row.update(evaluate_epoch(epoch, cfg, setup, val, history, run, main))
            history.append(row)
            save_epoch(run, epoch + 1, history, setup, loop)
            trackers.log_epoch(epoch + 1, row)
            progress.update(row)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
    except BaseException:
        trackers.close()
        raise
    finally:
        progress.close()

    selection = {"mode": "last", "epoch": cfg.optim.epochs}
    if val is not None:
        selection = load_best(run, setup, history, val[1])
    # Final evaluation on the balanced test set (each rank predicts a shard, rank 0 gathers);
    # train features serve as kNN and NCM memory.
    evaluated = final_evaluation(run, setup.network, setup.method, setup, cfg)
    in_sync = _method_state_in_sync(setup.method) if distributed.world_size() > 1 else True
    if not main:
        distributed.barrier()
        return {"status": "done", "rank": distributed.rank()}
    metrics, arrays = evaluated
    final = final_record(cfg, setup, history, metrics, arrays, selection, in_sync)
    final["warnings"] += trackers.warnings
    final["wall_time_s"] = time.time() - started
    final["versions"] = environment()
    run.write_final(final)
    run.previous_checkpoint.unlink(missing_ok=True)  # done: the last checkpoint is the record
    logged_warnings = len(trackers.warnings)
    trackers.log_final(final, run.path, cfg.optim.epochs)
    trackers.close()
    if len(trackers.warnings) > logged_warnings:  # a tracker failed at the end: say so
        final["warnings"] += trackers.warnings[logged_warnings:]
        run.write_final(final)
    distributed.barrier()
    return final


def train_one_epoch(epoch: int, setup: Setup, loop: Loop, progress: Progress | None = None) -> dict:
    """One pass over the training batches; returns the epoch's ``metrics.jsonl`` row. ``progress``
    prints a line every ``train.log_every_steps`` steps in a log (:meth:`Progress.step`)."""
    network, method, base_loss, device = setup.network, setup.method, setup.base_loss, setup.device
    network.train()
    method.train()
    class_weight = loop.reweight(epoch)
    class_weight = class_weight.to(device) if class_weight is not None else None
    check_every = 1 if device.type == "cpu" else 25  # finiteness checks sync the GPU
    sums: dict[str, torch.Tensor] = {}
    correct, seen = torch.zeros((), device=device), torch.zeros((), device=device)
    epoch_start = time.time()
    for step, (x, y) in enumerate(loop.epoch_batches(epoch)):
        failpoint("train_step", epoch=epoch + 1, step=step + 1)
        context = StepContext(epoch, step, loop.steps_per_epoch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=setup.amp):
            features, logits = loop.forward(x)
            terms = {"loss/base": base_loss(logits.float(), y, class_weight)}
        terms.update(method_terms(method, features, logits, y, network.classifier, context))
        total = sum(terms.values())
        loop.optimizer.zero_grad(set_to_none=True)
        total.backward()
        distributed.average_gradients(method.parameters())  # DDP averages the network's
        loop.optimizer.step()
        method.after_step(network.classifier)  # projections (MaxNorm); nothing for most methods
        loop.scheduler.step()

        for name, value in terms.items():
            sums[name] = sums.get(name, 0) + value.detach().float() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        if progress is not None:
            progress.step(epoch, step, loop.steps_per_epoch, total)
        if (step + 1) % check_every == 0 or step + 1 == loop.steps_per_epoch:
            _check_finite(sums, epoch, step, check_every)
    return epoch_row(epoch, sums, correct, seen, time.time() - epoch_start, loop, method)


def method_terms(
    method: Regularizer, features, logits, targets, classifier, context: StepContext | None = None
) -> dict:
    """The regularizer's terms in fp32 with autocast off, as the official SAR code computes them:
    under bf16 autocast the anchors' pass through the classifier would otherwise run in bf16."""
    with torch.autocast(features.device.type, enabled=False):
        return method(features.float(), logits.float(), targets, classifier, context)


def evaluate_epoch(epoch, cfg: DictConfig, setup: Setup, val, history, run: RunDir, main) -> dict:
    """Test metrics every ``train.eval_every`` epochs (logged, never selected on) and, with
    ``train.select=best_val``, the validation balanced accuracy, saving ``best.pt`` when it improves."""
    row = {}
    last = epoch + 1 == cfg.optim.epochs
    if cfg.train.eval_every and (epoch + 1) % cfg.train.eval_every == 0 and not last:
        _, logits, labels = predict_all(setup.network, setup.test, setup, cfg)
        metrics, _, _ = summarize(logits, labels, setup.split.counts, cfg.data.grouping)
        row.update({f"test/{k}": v for k, v in metrics.items() if isinstance(v, float)})
    if val is not None:
        _, logits, labels = predict_all(setup.network, val[0], setup, cfg)
        row["val/balanced"] = balanced_accuracy(logits, labels, setup.source.info.num_classes)
        best = max((r["val/balanced"] for r in history), default=-1.0)
        if main and row["val/balanced"] > best:  # ties keep the earlier epoch
            save_weights(run.best, epoch + 1, setup.network, setup.method)
    return row


def epoch_row(epoch, sums, correct, seen, seconds, loop: Loop, method: Regularizer) -> dict:
    """One line of ``metrics.jsonl``: each loss term's mean over the epoch's images (summed over
    processes), the total, lr, train accuracy, throughput and the method's diagnostics."""
    for value in (*sums.values(), correct, seen):
        distributed.all_reduce_sum(value)
    seen = float(seen)
    row = {"epoch": epoch + 1, "lr": loop.optimizer.param_groups[0]["lr"]}
    row.update({name: float(value) / seen for name, value in sums.items()})
    row["loss/total"] = sum(v for k, v in row.items() if "/" in k and k != "loss/total")
    row["train/acc"] = float(correct) / seen
    row["time_s"] = seconds
    row["images_per_s"] = seen / seconds
    row.update(method.epoch_stats())
    return row


def final_record(cfg, setup: Setup, history, metrics, arrays, selection, in_sync) -> dict:
    """``final.json`` of a finished run: metrics, facts of the run, the method's summary, warnings."""
    method_stats, method_warnings = setup.method.run_summary(history)
    return {
        "status": "done",
        "run_id": run_id(cfg),
        **metrics,
        "epochs": cfg.optim.epochs,
        "train_images": int(len(setup.split.train)),
        "test_images": int(len(arrays["labels"])),
        "method_info": setup.method.info(),
        "method_stats": method_stats,
        "warnings": config_warnings(cfg) + setup.split.warnings + method_warnings,
        "classifier": setup.network.classifier_info(),
        "device": str(setup.device),
        "precision": setup.precision,
        "compiled": bool(cfg.train.compile),
        "processes": distributed.world_size(),
        "selection": selection,
        "method_state_in_sync": in_sync,
    }


# ----------------------------------------------------------------------------- the run directory


def existing_run(cfg: DictConfig, run: RunDir, resume: bool) -> dict | None:
    """What is on disk already: the saved final metrics if the run is done with the same config
    (else refused); a checkpoint is continued only with ``resume``, and only with the same config."""
    if run.is_done():
        run.check_same_config(cfg, "reuse the finished run")
        return run.final()
    if run.checkpoint.exists() and not resume:
        raise UserError(
            f"{run.path} already has a checkpoint; pass --resume to continue it, or set name=... for a new run"
        )
    if resume and run.has_config:
        run.check_same_config(cfg)
    return None


def move_run_aside(run: RunDir) -> Path | None:
    """Rename an existing run folder, and its second stages' (``<run>__<stage>``), to
    ``<name>.stale-<n>`` (the sweep's ``--rerun-stale`` move), holding the run's lock so that a run
    in training is refused, never moved; returns the old run's new path (None: nothing there)."""
    from lt_bench.stages import stage_names
    from lt_bench.study.points import Point, move_aside

    if not run.path.exists():
        return None
    point = Point({}, None, tuple(stage_names()))
    point.run_dir = run.path  # the cached property, set: the folder is known, no config needed
    with run.lock():
        aside = move_aside(point)
    print(f"lt-bench: moved the old run {run.path} aside to {aside}", file=sys.stderr)
    return aside


def open_run(run: RunDir, cfg: DictConfig, setup: Setup, fresh: bool) -> None:
    """A fresh run writes its folder, resolved config and split; every run then says it is running."""
    if fresh:
        run.write_config(resolved(cfg))  # method and loss defaults written out
        run.write_split(setup.split.manifest)
    run.mark_running(run_id(cfg))


def save_epoch(run: RunDir, epoch: int, history: list[dict], setup: Setup, loop: Loop) -> None:
    """``metrics.jsonl`` then ``checkpoint.pt`` (rank 0), each written atomically: a kill at any
    point leaves the previous or the new checkpoint, never a torn one."""
    world = distributed.world_size()
    augment_states = (
        distributed.gather_objects(loop.augment_generator.get_state()) if world > 1 else None
    )
    if not distributed.is_main():
        return
    run.write_metrics(history)
    state = {
        "epoch": epoch,
        "network": setup.network.state_dict(),
        "method": setup.method.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "scheduler": loop.scheduler.state_dict(),
        "generator": loop.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    if augment_states is not None:
        state["augment_generators"] = augment_states
    with atomic.atomic_path(run.checkpoint) as tmp:
        torch.save(state, tmp)
        failpoint("checkpoint_write", epoch=epoch)
        if run.checkpoint.exists():  # the last one stays until the new one is published
            os.replace(run.checkpoint, run.previous_checkpoint)


def resume_from_checkpoint(run: RunDir, setup: Setup, loop: Loop) -> tuple[int, list[dict]]:
    """Restore weights, method state, optimizer, schedule and generators from ``checkpoint.pt``;
    return the epoch to start from and the metrics rows of the epochs already done. A run killed
    before its first checkpoint starts again from epoch 0."""
    if distributed.is_main():  # a kill during a write leaves only a temporary file behind
        run.remove_temporary_files()
    state = load_checkpoint(run, setup.device)
    if state is None:
        return 0, []
    setup.network.load_state_dict(state["network"])
    setup.method.load_state_dict(state["method"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    loop.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if distributed.world_size() > 1:
        loop.augment_generator.set_state(state["augment_generators"][distributed.rank()])
    start_epoch = state["epoch"]
    return start_epoch, [row for row in run.metrics() if row["epoch"] <= start_epoch]


def load_checkpoint(run: RunDir, device) -> dict | None:
    """The newest checkpoint that loads: ``checkpoint.pt``, else the one before it (a damaged file
    is named on stderr); None when the run has none. A damaged checkpoint with nothing to fall
    back on is a one-line error naming the fix."""
    damaged = []
    for path in (run.checkpoint, run.previous_checkpoint):
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as err:  # truncated, zeroed, not a checkpoint: try the one before
            damaged.append(f"{path.name} is damaged ({type(err).__name__})")
            continue
        for message in damaged:
            print(
                f"lt-bench: warning: {run.path}: {message}; resuming from {path.name}",
                file=sys.stderr,
            )
        return state
    if damaged:
        raise UserError(
            f"{run.path}: {'; '.join(damaged)} and no earlier checkpoint loads; "
            "delete the run folder and rerun it"
        )
    return None


def save_weights(path, epoch: int, network, method: Regularizer) -> None:
    """Network and method weights of one epoch (``best.pt``), written atomically."""
    state = {"epoch": epoch, "network": network.state_dict(), "method": method.state_dict()}
    with atomic.atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_best(run: RunDir, setup: Setup, history: list[dict], val_described: str) -> dict:
    """Load ``best.pt`` (written by rank 0) into the network and method; return the selection record."""
    distributed.barrier()
    best = torch.load(run.best, map_location=setup.device, weights_only=True)
    setup.network.load_state_dict(best["network"])
    setup.method.load_state_dict(best["method"])
    return {
        "mode": "best_val",
        "epoch": best["epoch"],
        "val_balanced": history[best["epoch"] - 1]["val/balanced"],
        "val": val_described,
    }


# ----------------------------------------------------------------------------- small helpers


def _method_state_in_sync(method: Regularizer) -> bool:
    """Whether every rank holds the same method state (centres, prototypes, EMA anchors)."""
    checksum = [
        float(t.double().sum()) for t in method.state_dict().values() if t.is_floating_point()
    ]
    every = distributed.gather_objects(checksum)
    return all(c == every[0] for c in every)


def _check_finite(sums: dict[str, torch.Tensor], epoch: int, step: int, window: int) -> None:
    for name, value in sums.items():
        if not torch.isfinite(value):
            where = (
                f"step {step + 1}"
                if window == 1
                else f"steps {max(step + 2 - window, 1)}-{step + 1}"
            )
            raise NonFiniteLoss(
                f"loss term {name!r} became non-finite at epoch {epoch + 1}, {where}; "
                "lower optim.lr or the term's weight"
            )

