"""Progress that works in logs as on a terminal: a run's epochs (:class:`Progress`: the tqdm bar on
a terminal, one line per epoch without one: SLURM logs, CI) and the one-line records of finished
runs that ``lt-bench sweep`` and ``lt-bench demo`` print (:func:`run_line`).

Lines go to stdout, flushed at once, so a log shows each as it happens; no torch here.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def duration(seconds: float | None) -> str:
    """``12 s``, ``3.5 min``, ``2.1 h``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    if seconds < 100:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 100 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def percent(fraction: float | None) -> str:
    """An accuracy in %, one decimal; ``–`` when there is none (an empty shot group)."""
    return "–" if fraction is None else f"{100 * fraction:.1f}%"


def loss_terms(row: dict) -> dict[str, float]:
    """An epoch row's loss terms and their total, in the row's order (``metrics.jsonl``: the
    engine writes every term, then ``loss/total``, then the accuracy and the method's statistics)."""
    terms = {}
    for key, value in row.items():
        if "/" in key:
            terms[key] = value
        if key == "loss/total":
            return terms
    return {k: v for k, v in row.items() if k.startswith("loss/")}  # a row without a total


def epoch_line(row: dict, epochs: int, seconds: float, elapsed: float, left: float | None) -> str:
    """``epoch 3/12  base 0.812  sar/pull 0.051  total 0.863  train acc 71.2%  lr 0.095
    4.2 s/epoch  elapsed 13 s  left ~38 s``."""
    losses = "  ".join(
        f"{key.removeprefix('loss/')} {value:.4g}" for key, value in loss_terms(row).items()
    )
    return (
        f"epoch {row['epoch']}/{epochs}  {losses}  train acc {percent(row.get('train/acc'))}  "
        f"lr {row['lr']:.4g}  {duration(seconds)}/epoch  elapsed {duration(elapsed)}  "
        f"left ~{duration(left)}"
    )


class Progress:
    """A run's epochs as they finish: on a terminal the tqdm bar (on stderr), elsewhere one line an
    epoch on stdout. The first line names the run folder. ``enabled`` false (``train.progress=false``,
    a sweep's worker, any rank but 0) prints nothing at all."""

    def __init__(
        self, cfg, run_dir: Path, start_epoch: int, train_images: int, device, main: bool = True
    ):
        """``cfg``: the run's config (epochs, names, ``train.progress``); ``main``: rank 0."""
        from tqdm.auto import tqdm

        terminal, enabled = sys.stderr.isatty(), main and bool(cfg.train.progress)
        self.epochs, self.start_epoch = cfg.optim.epochs, start_epoch
        self.lines = enabled and not terminal
        self.every_steps = int(cfg.train.get("log_every_steps") or 0) if self.lines else 0
        self.started = self.last = time.time()
        if enabled:
            resumed = f", resuming after epoch {start_epoch}" if start_epoch else ""
            print(
                f"lt-bench train: {run_dir} ({self.epochs} epochs{resumed}, {train_images} train "
                f"images, {device})",
                flush=True,
            )
        self.bar = tqdm(
            total=self.epochs,
            initial=start_epoch,
            unit="epoch",
            desc=f"{cfg.data.name}/{cfg.method.name}",
            disable=not (enabled and terminal),
        )

    def update(self, row: dict) -> None:
        """One epoch done: its ``metrics.jsonl`` row."""
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{row['loss/total']:.3f}", acc=f"{row['train/acc']:.3f}")
        if not self.lines:
            return
        now = time.time()
        elapsed, done = now - self.started, row["epoch"] - self.start_epoch
        left = elapsed / done * (self.epochs - row["epoch"]) if done > 0 else None
        print(epoch_line(row, self.epochs, now - self.last, elapsed, left), flush=True)
        self.last = now

    def step(self, epoch: int, step: int, steps: int, loss) -> None:
        """After a training step (0-based ``epoch`` and ``step`` of ``steps``): a line every
        ``train.log_every_steps`` steps in a log, ``  epoch 3 step 200/391  loss 0.8123  41 s``.
        ``loss`` (a tensor) is read only when a line is printed: reading it syncs the GPU."""
        if not self.every_steps or (step + 1) % self.every_steps or step + 1 == steps:
            return  # the epoch's own line follows the last step
        print(
            f"  epoch {epoch + 1} step {step + 1}/{steps}  loss {float(loss):.4g}  "
            f"{duration(time.time() - self.last)}",
            flush=True,
        )

    def close(self) -> None:
        self.bar.close()


# ----------------------------------------------------------------------------- a sweep's runs


def run_columns(result: dict) -> list[str]:
    """A finished run's numbers, as a sweep line shows them: top-1 and few-shot accuracy on the
    test set, seed, wall time; a run that did not finish shows its seed alone."""
    seed = [f"seed {result['seed']}"] if result.get("seed") is not None else []
    if result.get("status") != "done" or "top1" not in result:
        return seed
    return [
        f"top-1 {percent(result['top1']):>6}",
        f"few {percent(result.get('few')):>6}",
        *seed,
        f"{duration(result.get('wall_time_s')):>7}",
    ]


def run_line(done: int, total: int, name: str, result: dict, columns: list[str]) -> str:
    """``  [3/30] top-1  62.4%  few  17.0%  seed 0     12 s  SAR (no pull): done``: the columns
    first (they line up in a log), then what ran and how it ended, with its error if it failed."""
    error = f": {result['error']}" if result.get("error") else ""
    shown = "  ".join(columns)
    return f"  [{done}/{total}] {shown + '  ' if shown else ''}{name}: {result['status']}{error}"


def warning_lines(result: dict) -> list[str]:
    """A finished run's warnings (its ``final.json`` and its second stages'), one line each."""
    return [f"    warning: {warning}" for warning in result.get("warnings") or []]
