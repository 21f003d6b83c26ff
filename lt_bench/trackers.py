"""Experiment trackers: TensorBoard and MLflow, fed the same rows as ``metrics.jsonl``.

``train.loggers: [tensorboard, mlflow]`` (default: none). Both are optional extras
(``pip install "lt-bench[trackers]"``); asking for one twice or one that is not installed, for an
MLflow store that cannot be written, or for an http(s) tracking server that does not answer within
a few seconds, is refused before training. A tracker that fails mid-run prints one
warning, is switched off for the rest of the run, and the warning lands in ``final.json``:
``metrics.jsonl`` stays the record. Under DDP only rank 0 logs.

- TensorBoard: event files in ``<run>/tensorboard``; every per-epoch scalar under its
  ``metrics.jsonl`` name with the epoch as step, the final metrics as ``final/<name>``, and the
  per-class accuracy figure. A resumed run purges events past its checkpoint and continues.
- MLflow: the tracking URI from ``MLFLOW_TRACKING_URI``, else a local SQLite store ``mlflow.db``
  beside the runs with artifacts in ``mlartifacts/`` (MLflow 3 refuses the old ``mlruns/`` file
  store unless ``MLFLOW_ALLOW_FILE_STORE=true``); one MLflow run per lt-bench run, in an experiment
  named after the study (``train.experiment``, set by ``lt-bench sweep``) or the data set; the
  flattened config as params; per-epoch metrics with the epoch as step; the final metrics;
  ``final.json``, ``per_class.csv`` and the figure as artifacts; tags for run id, seed, method,
  loss and parent. The MLflow run id is kept in ``<run>/mlflow_run_id`` so a resumed run continues
  the same MLflow run. The run is named by its row label (:func:`lt_bench.config.run_label`: a
  study's arm label, or method + loss + the options that differ), with tags ``study``, ``arm`` and
  ``seed``.
- Both log the final separability statistics (``separability.json``'s summary) as
  ``final/separability/<name>``.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from omegaconf import DictConfig

from lt_bench import atomic
from lt_bench.errors import UserError
from lt_bench.rundir import FINAL, PER_CLASS, RunDir, check_writable


def mlflow_uri(cfg: DictConfig) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(cfg.out_dir).resolve() / 'mlflow.db'}"


def check_trackers(cfg: DictConfig) -> None:
    """Refuse, before anything is written, a tracker asked for twice (it would log everything
    twice), one that is not installed, an MLflow store that cannot be written, or an MLflow
    tracking server that does not answer (it would stall the run for minutes)."""
    loggers = list(cfg.train.loggers)
    twice = sorted({name for name in loggers if loggers.count(name) > 1})
    if twice:
        raise UserError(
            f"train.loggers={loggers} names {', '.join(twice)} more than once (it would log "
            f"everything twice); list each tracker once, e.g. train.loggers=[{', '.join(dict.fromkeys(loggers))}]"
        )
    for name in loggers:
        if importlib.util.find_spec(name) is None:
            raise UserError(
                f"train.loggers asks for {name}, which is not installed; "
                f'pip install "lt-bench[{name}]" (or "lt-bench[trackers]"), or drop it from train.loggers'
            )
    if "mlflow" in loggers:
        uri = mlflow_uri(cfg)
        if uri.startswith(("http://", "https://")):
            check_reachable(uri)
        else:
            check_local_store(uri)


def check_local_store(uri: str) -> None:
    """An MLflow store on this machine (SQLite, file store, a plain path) must be writable."""
    local = uri.split("://", 1)[-1] if uri.startswith(("sqlite:", "file:")) else None
    if local is None and "://" not in uri:
        local = uri  # a plain path is a file store
    if local is None:
        return  # another scheme (databricks, ...): MLflow checks it
    target = Path(local)
    try:
        check_writable(target.parent if uri.startswith("sqlite:") else target)
    except UserError as err:
        raise UserError(
            f"the MLflow store {uri} cannot be written ({err}); set MLFLOW_TRACKING_URI "
            "to a writable store or drop mlflow from train.loggers"
        ) from err


CONNECT_TIMEOUT_S = 3.0  # an http(s) tracking server that does not answer in this time is refused


def check_reachable(uri: str) -> None:
    """Ask an http(s) tracking server for ``/health`` within :data:`CONNECT_TIMEOUT_S` (through the
    proxy its requests would use): MLflow's own client retries an unreachable server for minutes,
    per call. Any HTTP answer, an error status or a certificate MLflow may be told to accept
    included, counts as reachable; only silence, a refused connection or an unknown host refuse."""
    url = f"{uri.rstrip('/')}/health"
    try:
        urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return  # the server answered
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, ssl.SSLError):
            return  # it answered; its certificate is MLflow's business (MLFLOW_TRACKING_INSECURE_TLS)
        shown = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        raise UserError(
            f"the MLflow tracking server {uri} cannot be reached ({shown}; "
            f"{CONNECT_TIMEOUT_S:g} s timeout); start it, fix MLFLOW_TRACKING_URI, or drop mlflow "
            "from train.loggers"
        ) from err


def _numbers(row: dict) -> dict[str, float]:
    """The numeric entries of a metrics row or final.json (booleans as 0/1)."""
    return {
        k: float(v)
        for k, v in row.items()
        if isinstance(v, (int, float)) and k != "epoch" and v == v  # drop NaN
    }


def final_numbers(final: dict, run_dir: Path) -> dict[str, float]:
    """What both trackers log at the end: the numbers of ``final.json`` and, as
    ``separability/<name>``, those of ``separability.json``'s summary (NC1-NC3, intra/inter,
    silhouette, kNN and NCM accuracy, ...) when the run has one."""
    values = _numbers(final)
    summary = RunDir(run_dir).separability().get("summary") or {}
    values.update({f"separability/{k}": v for k, v in _numbers(summary).items()})
    return values


def per_class_figure(run_dir: Path):
    """Per-class test accuracy against class size, from ``per_class.csv``; None without it."""
    path = run_dir / PER_CLASS
    if not path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(path)
    figure, ax = plt.subplots(figsize=(5, 3.2))
    ax.scatter(table["n_train"], table["accuracy"], s=12)
    ax.set_xscale("log")
    ax.set_xlabel("training images of the class")
    ax.set_ylabel("test accuracy")
    ax.set_title(run_dir.name, fontsize=8)
    figure.tight_layout()
    return figure


class TensorBoard:
    name = "tensorboard"

    def __init__(self, cfg: DictConfig, run_dir: Path, start_epoch: int):
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run drops the events logged after its checkpoint (they are recomputed).
        self.writer = SummaryWriter(
            str(run_dir / "tensorboard"), purge_step=start_epoch + 1 if start_epoch else None
        )

    def log_epoch(self, epoch: int, row: dict) -> None:
        for key, value in _numbers(row).items():
            self.writer.add_scalar(key, value, epoch)
        self.writer.flush()

    def log_final(self, final: dict, run_dir: Path, step: int) -> None:
        for key, value in final_numbers(final, run_dir).items():
            self.writer.add_scalar(f"final/{key}", value, step)
        figure = per_class_figure(run_dir)
        if figure is not None:
            self.writer.add_figure("per_class_accuracy", figure, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflow:
    name = "mlflow"

    def __init__(self, cfg: DictConfig, run_dir: Path, start_epoch: int):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from lt_bench.config import flatten, run_id, run_label, to_dict

        uri = mlflow_uri(cfg)
        self.client = MlflowClient(tracking_uri=uri)
        id_file = run_dir / "mlflow_run_id"
        if id_file.exists():  # a resumed run continues its MLflow run
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = cfg.train.experiment or cfg.data.name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            artifacts = None
            if uri.startswith("sqlite:"):  # artifacts beside the store, not in the working folder
                artifacts = (Path(uri.split("://", 1)[1]).parent / "mlartifacts" / name).as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        label = run_label(cfg)
        if cfg.stage.get("name"):
            label = f"{label} + {cfg.stage.name}"
        tags = {
            "lt_bench.run_id": run_id(cfg),
            "lt_bench.run_dir": str(run_dir),
            "study": cfg.train.experiment or "",
            "arm": label,
            "seed": str(cfg.seed),
            "method": cfg.method.name,
            "loss": cfg.loss.name,
        }
        if cfg.stage.get("name"):
            tags["parent"] = run_dir.name.rsplit("__", 1)[0]
        # Named by the row label (runs of one arm share it; the seed tag tells them apart).
        run = self.client.create_run(experiment_id, run_name=label, tags=tags)
        self.run_id = run.info.run_id
        atomic.write_text(id_file, self.run_id + "\n")
        params = [Param(k, str(v)[:6000]) for k, v in flatten(to_dict(cfg)).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params a call
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_epoch(self, epoch: int, row: dict) -> None:
        self._log(_numbers(row), epoch)

    def log_final(self, final: dict, run_dir: Path, step: int) -> None:
        self._log({f"final/{k}": v for k, v in final_numbers(final, run_dir).items()}, step)
        for name in (FINAL, PER_CLASS):
            if (run_dir / name).exists():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        figure = per_class_figure(run_dir)
        if figure is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "per_class_accuracy.png"
                figure.savefig(path, dpi=100)
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id)

    def close(self) -> None:
        pass


FACTORIES = {"tensorboard": TensorBoard, "mlflow": MLflow}


class Trackers:
    """A run's trackers. Each call is guarded: a tracker that raises prints one warning, is
    dropped, and the warning is kept for ``final.json``."""

    def __init__(self, cfg: DictConfig, run_dir: Path, start_epoch: int, enabled: bool = True):
        self.active: list = []
        self.warnings: list[str] = []
        if not enabled:  # DDP: rank 0 only
            return
        for name in cfg.train.loggers:
            self._guarded(name, None, lambda n=name: self.active.append(
                FACTORIES[n](cfg, run_dir, start_epoch)
            ))  # fmt: skip

    def _guarded(self, name: str, tracker, call, **where) -> None:
        from lt_bench.failpoints import failpoint

        try:
            failpoint("tracker", name=name, **where)
            call()
        except Exception as err:  # any tracker failure: the run goes on
            message = (
                f"{name} logging failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                "it was switched off for the rest of the run, metrics.jsonl stays the record"
            )
            print(f"lt-bench: warning: {message}", file=sys.stderr)
            self.warnings.append(message)
            if tracker in self.active:
                self.active.remove(tracker)

    def log_epoch(self, epoch: int, row: dict) -> None:
        for tracker in list(self.active):
            self._guarded(
                tracker.name, tracker, lambda t=tracker: t.log_epoch(epoch, row), epoch=epoch
            )

    def log_final(self, final: dict, run_dir: Path, step: int) -> None:
        for tracker in list(self.active):
            self._guarded(
                tracker.name, tracker, lambda t=tracker: t.log_final(final, run_dir, step)
            )

    def close(self) -> None:
        for tracker in list(self.active):
            self._guarded(tracker.name, tracker, tracker.close)
