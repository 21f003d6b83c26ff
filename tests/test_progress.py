"""Progress that works in logs (issue 21): ``train`` names its run folder first and prints a line
an epoch without a terminal; a sweep prints each run's label, seed, top-1 and few-shot accuracy
and its warnings; a tuned study prints its phases, each trial's score and each arm's choice; done
runs made by other code are counted."""

import io
import json
import sys

import pytest

from lt_bench.cli import main
from lt_bench.progress import duration, loss_terms, percent
from lt_bench.provenance import code_identity
from lt_bench.rundir import RunDir
from lt_bench.study import expand, load_study
from tests.conftest import tiny
from tests.test_sweep import BASE
from tests.test_tune import STUDY as TUNED

TRAIN = tiny("data.ratio=4", "method.name=sar", "optim.epochs=2", "train.progress=true")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def train(tmp_path, *extra):
    return main(["train", "-", *TRAIN, f"out_dir={tmp_path / 'runs'}", *extra])


def test_train_without_a_terminal_names_its_run_first_then_prints_a_line_an_epoch(tmp_path, capsys):
    assert train(tmp_path) == 0
    lines = capsys.readouterr().out.splitlines()
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = RunDir(run_dir)
    final, rows = run.final(), run.metrics()
    assert (
        lines[0]
        == f"lt-bench train: {run_dir} (2 epochs, {final['train_images']} train images, cpu)"
    )
    assert [line.split("  ")[0] for line in lines[1:3]] == ["epoch 1/2", "epoch 2/2"]
    for line, row in zip(lines[1:3], rows):
        terms = ["base", "sar/anchor_ce", "sar/pull", "total"]
        assert [part.split(" ")[0] for part in line.split("  ")[1:5]] == terms
        assert f"  total {row['loss/total']:.4g}  " in line
        assert f"  train acc {100 * row['train/acc']:.1f}%  lr {row['lr']:.4g}  " in line
        assert "/epoch  elapsed " in line and "  left ~" in line
    assert lines[3].startswith(f"{run_dir}: top-1 {100 * final['top1']:.1f}%") and len(lines) == 4

    assert train(tmp_path) == 0  # done already: no run line, no epochs
    assert capsys.readouterr().out.startswith("already done: ")


def test_log_every_steps_adds_step_lines_between_the_epoch_lines(tmp_path, capsys):
    assert train(tmp_path, "train.log_every_steps=2") == 0
    lines = capsys.readouterr().out.splitlines()
    (run_dir,) = (tmp_path / "runs").iterdir()
    steps = -(-RunDir(run_dir).final()["train_images"] // 16)  # batch size 16, the last one partial
    shown = [s for s in range(2, steps, 2)]  # every 2nd step, never the epoch's last
    assert steps > 2 and shown
    expected = [f"  epoch 1 step {s}/{steps}" for s in shown] + ["epoch 1/2"]
    expected += [f"  epoch 2 step {s}/{steps}" for s in shown] + ["epoch 2/2"]
    assert [line.split("  loss ")[0].split("  base ")[0] for line in lines[1:-1]] == expected
    # Display only: the same run id as without step lines.
    assert train(tmp_path) == 0 and capsys.readouterr().out.startswith("already done: ")


def test_train_progress_false_prints_neither_run_line_nor_epochs(tmp_path, capsys):
    assert train(tmp_path, "train.progress=false") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert ": top-1 " in line and not line.startswith("lt-bench train: ")


def test_train_on_a_terminal_keeps_the_bar_and_prints_no_epoch_lines(tmp_path, capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert train(tmp_path) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("lt-bench train: ") and len(lines) == 2
    assert not [line for line in lines if line.startswith("epoch ")]
    assert "2/2" in terminal.getvalue() and "epoch" in terminal.getvalue()  # tqdm's bar


def test_epoch_lines_show_the_loss_terms_in_the_rows_order_and_no_statistics():
    row = {
        "epoch": 1, "lr": 0.05, "loss/base": 1.5, "sar/anchor_ce": 0.9, "sar/pull": 0.01,
        "loss/total": 2.41, "train/acc": 0.2, "time_s": 0.1, "sar/gate_rate": 0.2,
    }  # fmt: skip
    assert list(loss_terms(row)) == ["loss/base", "sar/anchor_ce", "sar/pull", "loss/total"]
    assert [duration(s) for s in (4.25, 42, 330, 7200, None)] == [
        "4.2 s",
        "42 s",
        "5.5 min",
        "2.0 h",
        "–",
    ]
    assert percent(0.6234) == "62.3%" and percent(None) == "–"


LABELLED = """
name: tiny_labelled
base: base.yaml
fixed: {optim.epochs: 1}
arms:
  - {method.name: none, label: plain CE}
  - {method.name: center}
grid:
  seed: [0]
"""


@pytest.fixture
def labelled(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(LABELLED)
    return str(tmp_path / "study.yaml"), tmp_path / "runs"


def test_a_sweep_prints_each_runs_label_scores_and_warnings_without_a_terminal(labelled, capsys):
    study, runs = labelled
    assert main(["sweep", study, "--runs-dir", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    plain, center = expand(load_study(study), runs)
    for point, name in ((plain, "plain CE"), (center, center.run_dir.name)):
        final = RunDir(point.run_dir).final()
        (at,) = [i for i, line in enumerate(lines) if line.endswith(f"  {name}: done")]
        line = lines[at]
        assert line.startswith("  [") and f"top-1 {percent(final['top1']):>6}" in line
        assert f"few {percent(final['few']):>6}  seed 0  " in line
        assert final["warnings"]  # the milestones never reached in one epoch
        shown = lines[at + 1 : at + 1 + len(final["warnings"])]
        assert shown == [f"    warning: {warning}" for warning in final["warnings"]]


def test_a_sweep_on_a_terminal_prints_the_warnings_above_its_bar(labelled, capsys, monkeypatch):
    study, runs = labelled
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert main(["sweep", study, "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "  [1/2]" not in out  # the bar says it
    warnings = [
        w for p in expand(load_study(study), runs) for w in RunDir(p.run_dir).final()["warnings"]
    ]
    assert warnings and all(f"    warning: {warning}\n" in out for warning in warnings)


def test_a_tuned_sweep_prints_its_phases_trial_scores_and_choices(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(BASE)
    study = tmp_path / "study.yaml"
    study.write_text(TUNED.replace("- {method.name: sar}", "- {method.name: sar, label: SAR}"))
    runs = tmp_path / "runs"
    assert main(["sweep", str(study), "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    record = json.loads((runs / "tune" / "tuning.json").read_text())

    tuning = lines.index(
        "tiny_tuned tuning: 2 arms x 2 trials = 4 runs, 0 done; selecting on validation "
        "balanced accuracy (last epoch)"
    )
    chosen = lines.index("tiny_tuned: chosen on validation balanced accuracy:")
    final = lines.index("tiny_tuned final: 4 runs with each arm's chosen values, 0 done")
    assert tuning < chosen < final
    for arm in record["arms"]:
        name = arm.get("label", arm["arm"])
        for trial in arm["trials"]:
            values = ", ".join(f"{k}={v:.4g}" for k, v in trial["values"].items())
            (line,) = [
                line
                for line in lines[tuning:chosen]
                if f"  trial {trial['trial']}  " in line
                and line.endswith(f"  {values}  {name}: done")
            ]
            assert line.startswith("  [") and f"val {percent(trial['val_balanced']):>6}" in line
        pick = arm["chosen"]
        values = ", ".join(f"{k}={v:.4g}" for k, v in pick["values"].items())
        assert (
            f"  {name}: trial {pick['trial']}, {values}, val {percent(pick['val_balanced'])}"
            in (lines[chosen + 1 : final])
        )
    assert len([line for line in lines[final:] if line.startswith("  [")]) == 4


def test_done_runs_made_by_other_code_are_counted_in_status_and_dry_run(labelled, capsys):
    study, runs = labelled
    assert main(["sweep", study, "--runs-dir", str(runs)]) == 0
    plain, center = expand(load_study(study), runs)
    now = dict(code_identity())
    RunDir(center.run_dir).update_final(versions=now)
    RunDir(plain.run_dir).update_final(versions={**now, "git_commit": "1a2b3c4d" * 5})
    capsys.readouterr()
    shown = f"commit 1a2b3c4d (now {(now['git_commit'] or 'no commit')[:8]})"
    for flag in ("--status", "--dry-run"):
        assert main(["sweep", study, "--runs-dir", str(runs), flag]) == 0
        (line,) = [line for line in capsys.readouterr().out.splitlines() if "other code" in line]
        assert line.startswith(
            f"tiny_labelled: 1 of 2 done runs were made by other code ({shown}); "
        )
        assert "may mix code versions" in line and "--rerun-stale does not rerun them" in line

    RunDir(plain.run_dir).update_final(versions=None)  # runs older than the record: not flagged
    assert main(["sweep", study, "--runs-dir", str(runs), "--status"]) == 0
    assert "other code" not in capsys.readouterr().out


RESULT = {
    "run_dir": "runs/synthetic_sar_s0_ab12cd34ef",
    "status": "done",
    "seed": 0,
    "top1": 0.6240,
    "few": 0.17,
    "wall_time_s": 42.0,
    "warnings": ["the pull was never applied"],
}
LINE = "  [3/30] top-1  62.4%  few  17.0%  seed 0     42 s  synthetic_sar_s0_ab12cd34ef: done"


@pytest.mark.parametrize("terminal", [False, True])
def test_the_demo_and_the_sweep_print_runs_with_one_formatter(capsys, monkeypatch, terminal):
    from lt_bench.cli import _RunLines

    if terminal:
        monkeypatch.setattr(sys, "stderr", Terminal())
    _RunLines("demo", always=True).run(3, 30, RESULT)  # the demo: no bar, lines on a terminal too
    assert capsys.readouterr().out == f"{LINE}\n    warning: the pull was never applied\n"
    _RunLines("sweep").run(3, 30, RESULT)  # the sweep: on a terminal its bar says the rest
    shown = "    warning: the pull was never applied\n"
    assert capsys.readouterr().out == (shown if terminal else f"{LINE}\n{shown}")
    failed = {"run_dir": RESULT["run_dir"], "status": "failed", "error": "boom", "seed": 1}
    _RunLines("demo", always=True).run(4, 30, failed)
    assert capsys.readouterr().out == "  [4/30] seed 1  synthetic_sar_s0_ab12cd34ef: failed: boom\n"
