"""Every second stage found by its file alone gets the same checks: it runs on a tiny finished
parent and writes a complete, done child; names and options are declared where the report and
``lt-bench sweep --status`` read them; an unknown stage is refused, never run as another."""

import dataclasses
import subprocess
import sys

import pytest
import torch

from lt_bench.cli import main
from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.errors import UserError
from lt_bench.options import declared_defaults, undeclared_numeric_options
from lt_bench.rundir import LOCK, RunDir, child_path, run_path
from lt_bench.stages import (
    STAGES,
    display_name,
    get_stage,
    retrain,
    stage_names,
    stage_options,
)
from lt_bench.stages.base import Stage
from tests.conftest import tiny
from tests.test_engine import RUN_FILES
from tests.test_stages import train_parent

# How report rows ("sar + cRT") and final.json["stage"] show each stage: must never change.
DISPLAY = {"crt": "cRT", "lws": "LWS", "tau_norm": "tau-norm", "ncm": "NCM"}


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    return train_parent(tmp_path_factory.mktemp("runs"))


def test_the_four_stages_are_found_with_their_display_names():
    assert stage_names() == ["crt", "lws", "ncm", "tau_norm"]
    assert {name: display_name(name) for name in stage_names()} == DISPLAY == STAGES


@pytest.mark.parametrize("name", stage_names())
def test_each_stage_has_one_face_and_declared_options(name):
    stage = get_stage(name)
    assert issubclass(stage, Stage) and stage.name == name and stage.display == display_name(name)
    assert stage_options(name) is stage.Options and dataclasses.is_dataclass(stage.Options)
    assert undeclared_numeric_options(stage.Options) == []


@pytest.mark.parametrize("name", stage_names())
def test_each_stage_writes_a_done_child_with_every_run_file(parent, name):
    fields = {f.name for f in dataclasses.fields(stage_options(name))}
    final = retrain(parent, name, ["stage.epochs=1"] if "epochs" in fields else [])
    child = RunDir(child_path(parent, name))
    assert child.is_done() and child.final() == final
    assert sorted(p.name for p in child.path.iterdir() if p.name != LOCK) == RUN_FILES
    assert final["stage"] == get_stage(name).display and final["parent"] == parent.name
    saved = load_config(child / "config.yaml").stage  # the report reads the name and every option
    expected = {**declared_defaults(stage_options(name)), "name": name}
    if "epochs" in fields:
        expected["epochs"] = 1
    assert dict(saved) == expected
    assert torch.load(child.checkpoint, weights_only=True)["stage"] == name


def test_listing_stages_does_not_import_torch():
    code = (
        "import sys, lt_bench.stages as s; s.stage_names(); "
        "assert [s.display_name(n) for n in s.stage_names()] and s.STAGES; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("name", "hint"),
    [("crtt", "did you mean crt?"), ("x", "choose one of: crt, lws, ncm, tau_norm"), ("base", "")],
)
def test_an_unknown_stage_is_refused_before_anything_is_written(parent, name, hint):
    with pytest.raises(UserError, match=f"^unknown stage '{name}'; {hint}"):
        retrain(parent, name)
    assert not child_path(parent, name).exists()


def test_the_cli_refuses_an_unknown_stage_with_exit_2(parent, capsys):
    assert main(["retrain", str(parent), "--stage", "crtt"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage 'crtt'; did you mean crt?" in err and len(err.strip().splitlines()) == 1
    assert not child_path(parent, "crtt").exists()


def test_a_stage_check_refuses_before_anything_is_written(tmp_path):
    overrides = tiny(
        "optim.epochs=1", "data.ratio=4", "model.classifier=cosine", f"out_dir={tmp_path}"
    )
    cfg = load_config(None, overrides)
    train(cfg)
    parent = run_path(cfg)
    with pytest.raises(UserError, match="tau_norm needs a linear classifier; this run's is cosine"):
        retrain(parent, "tau_norm")
    assert not child_path(parent, "tau_norm").exists()
