"""Issue 21, item 3: ``lt-bench list``, ``train --print-config``, ``--version``, a torch-free
``--help``, and run configs that write out the method's and loss's defaults without changing any
run id or making a done run stale."""

import subprocess
import sys
from pathlib import Path

import yaml

from lt_bench import __version__
from lt_bench.cli import main
from lt_bench.config import identity_values, load_config, resolved, run_id
from lt_bench.rundir import RunDir
from lt_bench.study import expand, load_study, point_status, stale_keys
from tests.conftest import tiny
from tests.test_sweep import BASE

ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- --help, --version


def test_help_imports_no_torch():
    code = (
        "import sys, runpy; sys.argv = ['lt-bench', '--help']\n"
        "try:\n    runpy.run_module('lt_bench', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code\n"
        "print('torch' in sys.modules, 'timm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "list" in out and "--version" in out  # the help itself
    assert out.splitlines()[-1] == "False False"


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"lt-bench {__version__}\n"


# ----------------------------------------------------------------------------- list


def _option_line(out: str, entry: str, option: str) -> list[str]:
    """The fields (name, type, "default", value, range...) of ``option`` under ``entry``."""
    block = out.split(f"\n{entry}", 1)[1] if not out.startswith(entry) else out
    line = next(line for line in block.splitlines() if line.split()[:1] == [option])
    return line.split()


def test_list_methods_shows_type_default_and_range(capsys):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    assert _option_line(out, "sar", "trade_off") == [
        "trade_off",
        "float",
        "default",
        "0.1",
        ">=",
        "0",
    ]
    assert _option_line(out, "sar", "filter_conf")[-2:] == ["(0,", "1]"]
    assert _option_line(out, "sar", "seed")[:5] == ["seed", "int", "|", "None", "default"]
    assert "none\n    no options\n" in out


def test_list_losses_stages_datasets(capsys):
    assert main(["list", "losses"]) == 0
    out = capsys.readouterr().out
    assert _option_line(out, "ldam", "scale") == ["scale", "float", "default", "30.0", ">", "0"]
    assert _option_line(out, "(every loss)", "reweight")[:4] == [
        "reweight",
        "str",
        "default",
        "none",
    ]
    assert "one of none, cb, drw" in out
    assert main(["list", "stages"]) == 0
    out = capsys.readouterr().out
    assert _option_line(out, "crt", "epochs") == ["epochs", "int", "default", "10", ">=", "1"]
    assert "ncm" in out and "tau_norm" in out
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    assert _option_line(out, "synthetic", "train_per_class")[:4] == [
        "train_per_class", "int", "default", "500",
    ]  # fmt: skip


def test_list_models_shows_ours_and_names_timm(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "resnet32_cifar  (input 3x32x32" in out and "small_cnn  (input 1x28x28" in out
    assert "any timm.create_model name" in out
    assert "vit_base_patch16_224\n" not in out  # not all of timm by default
    assert main(["list", "models", "--all"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert "resnet32_cifar" in names and "resnet18" in names and len(names) > 500


def test_list_refuses_bad_input_on_one_line(capsys):
    assert main(["list", "method"]) == 2
    assert main(["list", "methods", "--all"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err
    assert "--all lists every timm model; use it with lt-bench list models" in err


# ----------------------------------------------------------------------------- --print-config


def test_print_config_prints_resolved_yaml_and_trains_nothing(tmp_path, capsys):
    overrides = tiny("method.name=sar", "method.trade_off=0.2", f"out_dir={tmp_path}")
    assert main(["train", "-", "--print-config", *overrides]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["method"]["trade_off"] == 0.2  # as given
    assert printed["method"]["filter_conf"] == 0.9  # the declared default, written out
    assert printed["loss"] == {
        "name": "ce", "reweight": "none", "weighting": "weighted_mean",
        "cb_beta": 0.9999, "drw_epoch": 160,
    }  # fmt: skip
    assert printed["data"]["name"] == "synthetic" and printed["optim"]["warmup_epochs"] == 0
    assert list(tmp_path.iterdir()) == []  # no run folder


# ----------------------------------------------------------------------------- run ids


def test_run_ids_are_unchanged_by_the_written_defaults():
    # The ids the code gave before config.yaml wrote the defaults out (hard-coded on purpose).
    assert run_id(load_config(None, tiny())) == "f6fa8e185f"
    cfg = load_config(None, tiny("method.name=sar", "loss.name=ldam"))
    assert run_id(cfg) == "e8df7df73f"
    assert run_id(load_config(None, [])) == "bf21a9e8fb"
    assert run_id(load_config("experiments/mnist_lt.yaml", [])) == "d78f1e1e44"
    # A config with the defaults filled in compares equal to the one it came from.
    assert identity_values(resolved(cfg)) == identity_values(cfg)
    assert resolved(cfg).method.momentum == 0.999 and "momentum" not in cfg.method


def test_a_trained_run_saves_its_defaults_and_is_not_stale(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(BASE)
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: tiny\nbase: base.yaml\nfixed: {optim.epochs: 1, method.name: sar}\n"
        "grid:\n  seed: [0, 1]\n"
    )
    runs = tmp_path / "runs"
    first, second = expand(load_study(study), runs)
    overrides = [f"{k}={v}" for k, v in first.overrides.items()]
    assert main(["train", str(tmp_path / "base.yaml"), "optim.epochs=1", "method.name=sar",
                 f"out_dir={runs}", *overrides]) == 0  # fmt: skip
    assert str(first.run_dir) in capsys.readouterr().out  # the study's folder for this point
    saved = RunDir(first.run_dir).raw_config()
    assert saved["method"]["trade_off"] == 0.1 and saved["loss"]["cb_beta"] == 0.9999
    # A run written before the change (no defaults in config.yaml) is done, not stale, too.
    old = RunDir(second.run_dir)
    old.write_config(second.cfg)
    old.write_final({"status": "done", "top1": 0.5})
    assert "trade_off" not in old.raw_config()["method"]
    assert stale_keys(first) == [] and point_status(first) == "done"
    assert stale_keys(second) == [] and point_status(second) == "done"
    capsys.readouterr()
    assert main(["sweep", str(study), "--runs-dir", str(runs), "--status"]) == 0
    assert "2 done, 0 failed, 0 incomplete, 0 pending, 0 stale" in capsys.readouterr().out
    # --resume and reuse compare the same way: the finished run is reused, not refused.
    assert main(["train", str(tmp_path / "base.yaml"), "optim.epochs=1", "method.name=sar",
                 f"out_dir={runs}", *overrides]) == 0  # fmt: skip


# ----------------------------------------------------------------------------- docs


def test_the_readme_study_schema_example_loads(tmp_path):
    """experiments/README.md documents the study file (arms, tune) with an example that loads."""
    text = (ROOT / "experiments" / "README.md").read_text()
    section = text.split("## Study file schema", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    base = ROOT / "experiments" / "fashion_mnist_lt.yaml"
    example = example.replace("base: ../fashion_mnist_lt.yaml", f"base: {base}")
    (tmp_path / "study.yaml").write_text(example)
    study = load_study(tmp_path / "study.yaml")
    assert study.tune is not None and study.tune.trials == 8 and len(study.arms) == 2
    assert "lt-bench list methods" in text and "--print-config" in text
