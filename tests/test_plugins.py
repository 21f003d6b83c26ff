"""Plugins (lt_bench.plugins): the method of docs/add_a_method.md, run from outside the package
through ``imports:`` and through a ``lt_bench.plugins`` entry point, in sweeps whose spawned
workers must import it themselves; and the one-line errors."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import tomllib

from lt_bench import plugins
from lt_bench.catalog import catalog, format_catalog
from lt_bench.cli import main
from lt_bench.errors import UserError
from lt_bench.methods import METHODS
from tests.conftest import tiny

DOC = Path(__file__).resolve().parents[1] / "docs" / "add_a_method.md"
BASE = """
data:
  name: synthetic
  options: {num_classes: 4, image_size: 8, train_per_class: 20, test_per_class: 5}
  ratio: 4
  batch_size: 16
  val_per_class: 2
model: {name: small_cnn}
optim: {lr: 0.05, warmup_epochs: 0, epochs: 1}
train: {progress: false}
"""


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def write_method(folder: Path, module: str = "my_methods") -> Path:
    """The doc's method, as ``folder/<module>.py``: the page's one python block."""
    (block,) = doc_blocks("python")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(block)
    return folder


def write_distribution(folder: Path, name: str, entry_points: dict[str, str]) -> None:
    """A fake installed distribution: ``<name>.dist-info`` with METADATA and entry_points.txt, as
    pip writes them, in ``folder`` (put on the import path beside its module)."""
    info = folder / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\n{lines}")


@pytest.fixture
def sandbox(monkeypatch, tmp_path):
    """A plugin test leaves this process as it found it: import path, PYTHONPATH, working folder,
    modules, the method registry and the entry points' once-per-process flag (tests that sweep
    the registries must not meet the doc's method)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    if "PYTHONPATH" in os.environ:
        monkeypatch.setenv("PYTHONPATH", os.environ["PYTHONPATH"])
    else:
        monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setattr(plugins, "_entry_points_loaded", False)
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    monkeypatch.chdir(tmp_path)
    modules = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - modules:  # the plugin modules written under tmp_path
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def doc_study(folder: Path) -> Path:
    """The doc's study file (two seeds, none and feature_norm) beside a tiny base config."""
    study = next(block for block in doc_blocks("yaml") if block.startswith("name:"))
    (folder / "base.yaml").write_text(BASE)
    (folder / "study.yaml").write_text(study)
    return folder / "study.yaml"


def finished(runs: Path) -> dict[str, list]:
    """Method name -> the runs' final.json, for every run folder under ``runs``."""
    out: dict[str, list] = {}
    for final in sorted(runs.glob("*/final.json")):
        config = (final.parent / "config.yaml").read_text()
        method = re.search(r"^method:\n  name: (\S+)", config, re.M).group(1)
        out.setdefault(method, []).append(json.loads(final.read_text()))
    return out


def test_the_doc_method_runs_in_a_sweep_through_imports(sandbox, capsys):
    """my_methods.py beside the study file, the sweep started elsewhere: the sweep process finds
    it in the study's folder, and the two spawned workers import it themselves."""
    folder = write_method(sandbox / "experiment")
    study = doc_study(folder)
    (sandbox / "elsewhere").mkdir()
    os.chdir(sandbox / "elsewhere")
    runs = sandbox / "runs"
    assert main(["sweep", str(study), "--runs-dir", str(runs), "--jobs", "2"]) == 0, (
        capsys.readouterr()
    )
    results = finished(runs)
    assert sorted(results) == ["feature_norm", "none"]
    assert [r["status"] for r in results["feature_norm"]] == ["done", "done"]
    for run in runs.glob("*feature_norm*"):
        first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
        assert first["feature_norm/pull"] > 0 and first["feature_norm/mean_norm"] > 0
        assert "my_methods" in (run / "config.yaml").read_text()  # imports travel with the run
    assert str(folder) in os.environ["PYTHONPATH"].split(os.pathsep)  # for submitit and slurm jobs


def test_the_doc_method_runs_in_a_sweep_through_an_entry_point(sandbox, capsys):
    """A fake installed distribution with the doc's pyproject.toml entry point: no imports:, the
    workers load the entry point when they first read the method registry."""
    site = write_method(sandbox / "site")
    (pyproject,) = doc_blocks("toml")
    table = tomllib.loads(pyproject)["project"]
    write_distribution(site, table["name"], table["entry-points"][plugins.ENTRY_POINT_GROUP])
    sys.path.append(str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH"), str(site)) if p
    )
    study = doc_study(sandbox)
    study.write_text(study.read_text().replace("imports: [my_methods]\n", ""))
    runs = sandbox / "runs"
    assert main(["sweep", str(study), "--runs-dir", str(runs), "--jobs", "2"]) == 0, (
        capsys.readouterr()
    )
    results = finished(runs)
    assert [r["status"] for r in results["feature_norm"]] == ["done", "done"]
    # And `lt-bench list methods` shows it, with where it comes from.
    listed = format_catalog("methods", catalog("methods"))
    assert "feature_norm  (from my_methods)\n    weight  float  default 0.1  >= 0" in listed


def test_train_with_an_imports_override(sandbox, capsys):
    write_method(sandbox)  # in the current folder
    out = sandbox / "runs"
    overrides = tiny("data.ratio=4", "optim.epochs=1", "method.name=feature_norm")
    args = ["train", "-", *overrides, "imports=[my_methods]", "method.weight=0.5", f"out_dir={out}"]
    assert main(args) == 0, capsys.readouterr()
    (run,) = out.iterdir()
    assert json.loads((run / "final.json").read_text())["status"] == "done"
    assert "feature_norm/pull" in (run / "metrics.jsonl").read_text()
    # The option's declared range is checked like a built-in method's.
    assert main([*args[:-2], "method.weight=-1", f"out_dir={out}"]) == 2
    assert "method.weight=-1" in capsys.readouterr().err


def test_list_methods_with_an_import(sandbox):
    write_method(sandbox)
    assert "feature_norm" not in METHODS
    entries = {entry.name: entry for entry in catalog("methods", imports=["my_methods"])}
    assert entries["feature_norm"].note == "from my_methods"
    assert [(o.name, o.default, o.range) for o in entries["feature_norm"].options] == [
        ("weight", 0.1, ">= 0"),
        ("target", 5.0, ">= 0"),
    ]
    assert entries["center"].note == ""


def test_a_missing_module_is_one_line_and_exit_code_2(sandbox, capsys):
    study = doc_study(sandbox)
    study.write_text(study.read_text().replace("[my_methods]", "[my_missing]"))
    assert main(["sweep", str(study), "--status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "imports: cannot import 'my_missing' (No module named 'my_missing'); put its folder on "
        "PYTHONPATH or install it"
    ) in err
    assert main(["train", "-", *tiny(), "imports=[my_missing]"]) == 2
    assert "cannot import 'my_missing'" in capsys.readouterr().err


def test_study_imports_must_be_a_list_of_names(sandbox, capsys):
    study = doc_study(sandbox)
    study.write_text(study.read_text().replace("[my_methods]", "my_methods"))
    assert main(["sweep", str(study), "--status"]) == 2
    assert "imports must be a list of module names, e.g. [my_methods]" in capsys.readouterr().err


DUPLICATE = """
from lt_bench.methods import METHODS, Regularizer


@METHODS.register("center")
class Center(Regularizer):
    pass
"""


def test_a_plugin_that_takes_a_registered_name_is_refused(sandbox, capsys):
    (sandbox / "dup_methods.py").write_text(DUPLICATE)
    assert main(["train", "-", *tiny(), "imports=[dup_methods]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "method 'center' is registered twice: by lt_bench.methods.center.CenterLoss and by "
        "dup_methods.Center; register the new one under another name"
    ) in err
    assert METHODS.get("center").__module__ == "lt_bench.methods.center"  # unchanged


def test_an_entry_point_taking_a_registered_name_names_the_distribution(sandbox):
    (sandbox / "dup_methods.py").write_text(DUPLICATE)
    write_distribution(sandbox, "dup-methods", {"dup": "dup_methods"})
    sys.path.append(str(sandbox))
    with pytest.raises(UserError) as caught:
        catalog("methods")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "plugin dup = dup_methods (entry point group lt_bench.plugins, distribution dup-methods "
        "0.1.0) failed to load: UserError: method 'center' is registered twice"
    )
    assert message.endswith("fix or uninstall dup-methods")


def test_an_entry_point_that_fails_to_import_names_the_distribution(sandbox):
    (sandbox / "broken_plugin.py").write_text("import not_installed_anywhere\n")
    write_distribution(sandbox, "broken-plugin", {"broken": "broken_plugin:register"})
    sys.path.append(str(sandbox))
    with pytest.raises(
        UserError,
        match=r"^plugin broken = broken_plugin:register .*distribution "
        r"broken-plugin 0\.1\.0\) failed to load: ModuleNotFoundError: No module "
        r"named 'not_installed_anywhere'; fix or uninstall broken-plugin$",
    ):
        METHODS.names()


def test_entry_points_are_loaded_once_and_a_function_is_called(sandbox):
    (sandbox / "counting_plugin.py").write_text(
        "CALLS = []\n\ndef register():\n    CALLS.append(1)\n"
    )
    write_distribution(sandbox, "counting-plugin", {"count": "counting_plugin:register"})
    sys.path.append(str(sandbox))
    assert "center" in METHODS and METHODS.names() and METHODS.get("none")
    import counting_plugin

    assert counting_plugin.CALLS == [1]


def test_the_same_definition_imported_again_replaces_itself(sandbox):
    """A plugin module reloaded (a notebook) registers the same class again: not a clash."""
    import importlib

    write_method(sandbox)
    plugins.import_modules(["my_methods"])
    first = METHODS.get("feature_norm")
    importlib.reload(sys.modules["my_methods"])
    assert METHODS.get("feature_norm") is not first
