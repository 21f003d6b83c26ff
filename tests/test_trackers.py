"""TensorBoard and MLflow, read back with each library's own reader and checked against
metrics.jsonl and final.json; resume continues the same runs; bad settings refused up front; a
tracker failing mid-run warns and the run goes on; the sweep's progress."""

import http.server
import io
import json
import socket
import sys
import threading
import time

import pytest

from lt_bench import failpoints
from lt_bench.cli import main
from lt_bench.errors import UserError
from lt_bench.trackers import CONNECT_TIMEOUT_S, check_reachable
from tests.conftest import tiny
from tests.test_sweep import BASE, STUDY

TINY = tiny(
    "data.ratio=3",
    "method.name=sar",
    "optim.epochs=2",
    "optim.lr=0.05",
    "name=run",
    train=24,
    test=6,
)


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def tensorboard_scalars(run_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_both_trackers_log_every_metric(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "runs"
    assert main(["train", "-", *TINY, f"out_dir={out}", "train.loggers=[tensorboard,mlflow]"]) == 0
    run_dir = out / "run"
    history, final = rows(run_dir), json.loads((run_dir / "final.json").read_text())

    scalars = tensorboard_scalars(run_dir)
    for row in history:
        for key in (
            "loss/base",
            "sar/anchor_ce",
            "lr",
            "train/acc",
            "images_per_s",
            "sar/gate_rate",
        ):
            step_values = dict(scalars[key])
            assert step_values[row["epoch"]] == pytest.approx(row[key], rel=1e-6), key
    assert dict(scalars["final/top1"])[2] == pytest.approx(final["top1"])

    client = MlflowClient(tracking_uri=mlflow_store)
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["method"] == "sar"
    assert run.data.tags["lt_bench.run_id"] == final["run_id"] and run.data.tags["seed"] == "0"
    assert run.data.params["method.name"] == "sar" and run.data.params["optim.epochs"] == "2"
    history_mlflow = client.get_metric_history(run_id, "loss/total")
    assert [m.step for m in history_mlflow] == [r["epoch"] for r in history]
    assert [m.value for m in history_mlflow] == pytest.approx([r["loss/total"] for r in history])
    assert run.data.metrics["final/top1"] == pytest.approx(final["top1"])
    # Named by the row label, tagged with study, arm and seed; separability logged to both.
    assert run.info.run_name == "sar" and run.data.tags["arm"] == "sar"
    assert run.data.tags["study"] == ""  # a lone run belongs to no study
    summary = json.loads((run_dir / "separability.json").read_text())["summary"]
    for key in ("nc1", "knn_accuracy", "silhouette"):
        assert run.data.metrics[f"final/separability/{key}"] == pytest.approx(summary[key])
        assert dict(scalars[f"final/separability/{key}"])[2] == pytest.approx(summary[key])
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"final.json", "per_class.csv", "per_class_accuracy.png"} <= artifacts
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "synthetic"  # a lone run: the data set names the experiment


def test_resume_continues_the_same_tensorboard_folder_and_mlflow_run(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "runs"
    args = ["train", "-", *TINY, f"out_dir={out}", "train.loggers=[tensorboard,mlflow]"]
    failpoints.arm("raise:train_step:epoch=2:step=1")
    try:
        with pytest.raises(failpoints.FailpointError):
            main(args)
    finally:
        failpoints.arm(None)
    run_dir = out / "run"
    first_id = (run_dir / "mlflow_run_id").read_text().strip()
    assert main([*args, "--resume"]) == 0
    assert (run_dir / "mlflow_run_id").read_text().strip() == first_id
    client = MlflowClient(tracking_uri=mlflow_store)
    steps = [m.step for m in client.get_metric_history(first_id, "loss/total")]
    assert steps == [1, 2]  # epoch 1 from the first attempt, epoch 2 after the resume
    assert len(client.search_runs([client.get_run(first_id).info.experiment_id])) == 1
    assert [step for step, _ in tensorboard_scalars(run_dir)["loss/total"]] == [1, 2]


def test_a_tracker_failing_mid_run_warns_and_the_run_goes_on(tmp_path, capsys):
    out = tmp_path / "runs"
    failpoints.arm("raise:tracker:name=tensorboard:epoch=2")
    try:
        assert main(["train", "-", *TINY, f"out_dir={out}", "train.loggers=[tensorboard]"]) == 0
    finally:
        failpoints.arm(None)
    err = capsys.readouterr().err
    assert err.count("tensorboard logging failed") == 2  # when it failed, and again at the end
    final = json.loads((out / "run" / "final.json").read_text())
    assert final["status"] == "done"
    assert any("tensorboard logging failed" in w for w in final["warnings"])
    assert [s for s, _ in tensorboard_scalars(out / "run")["loss/total"]] == [1]
    assert len(rows(out / "run")) == 2  # metrics.jsonl stays the record


@pytest.mark.parametrize(
    "extra, env, message",
    [
        (
            ["train.loggers=[wandb]"],
            {},
            "train.loggers=['wandb'] is out of range; allowed: one of tensorboard, mlflow",
        ),
        (
            ["train.loggers=[mlflow]"],
            {"MLFLOW_TRACKING_URI": "sqlite:///{tmp}/blocker/mlflow.db"},
            "the MLflow store",
        ),
        (
            ["train.loggers=[mlflow, mlflow]"],
            {},
            "train.loggers=['mlflow', 'mlflow'] names mlflow more than once (it would log "
            "everything twice); list each tracker once, e.g. train.loggers=[mlflow]",
        ),
        (
            ["train.loggers=[tensorboard,mlflow,tensorboard]"],
            {},
            "names tensorboard more than once",
        ),
    ],
)
def test_bad_tracker_settings_are_refused_before_training(
    tmp_path, capsys, monkeypatch, extra, env, message
):
    (tmp_path / "blocker").write_text("a file where the store's folder should be")
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    code = main(["train", "-", *TINY, f"out_dir={tmp_path / 'runs'}", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def closed_port() -> int:
    """A localhost port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_proxy(monkeypatch):
    """Requests to localhost go straight to it, whatever proxy the machine has."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "*")


def test_an_unreachable_tracking_server_is_refused_at_once(tmp_path, capsys, monkeypatch, no_proxy):
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.time()
    code = main(["train", "-", *TINY, f"out_dir={tmp_path / 'runs'}", "train.loggers=[mlflow]"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"the MLflow tracking server {uri} cannot be reached" in err
    assert "drop mlflow from train.loggers" in err
    assert time.time() - started < CONNECT_TIMEOUT_S and not (tmp_path / "runs").exists()


def test_a_tracking_server_that_answers_at_all_is_reachable(no_proxy):
    """Any HTTP answer, an error status included (an MLflow server without /health, behind a
    login), means the server is there: MLflow is left to speak to it."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_reachable(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(UserError, match="cannot be reached"):
        check_reachable(f"http://127.0.0.1:{server.server_port}/")  # closed now


def test_a_tracker_that_is_not_installed_is_refused(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a)
    )
    code = main(["train", "-", *TINY, f"out_dir={tmp_path / 'runs'}", "train.loggers=[mlflow]"])
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "lt-bench[mlflow]"' in err
    assert not (tmp_path / "runs").exists()


def test_sweep_prints_a_line_per_run_without_a_terminal(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    assert main(["sweep", str(tmp_path / "study.yaml"), "--runs-dir", str(tmp_path / "r")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  [")]
    assert [line.split("]")[0] for line in lines] == ["  [1/4", "  [2/4", "  [3/4", "  [4/4"]
    assert all(line.endswith(": done") for line in lines)


def test_sweep_shows_a_progress_bar_with_counts_and_time_left_on_a_terminal(tmp_path, monkeypatch):
    from lt_bench.study import expand, launch, load_study

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    launch(expand(load_study(tmp_path / "study.yaml"), tmp_path / "r"))
    shown = terminal.getvalue()
    assert "4/4" in shown and "done=4" in shown and "failed=0" in shown and "running=0" in shown
    assert "<" in shown  # tqdm's [elapsed<remaining] estimate


def test_tracker_names_are_declared_once():
    from lt_bench.config import TRACKERS
    from lt_bench.trackers import FACTORIES

    assert tuple(FACTORIES) == TRACKERS
