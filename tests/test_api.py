"""Issue 21, item 11: the Python API. Every name of ``lt_bench.__all__`` resolves and has a
docstring, ``import lt_bench`` stays torch-free, docs/api.md's examples run on the committed demo
study, and the loaders' values are those of the run files."""

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import lt_bench
from lt_bench.report.loaders import RUN_COLUMNS, load_curves, load_per_class

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "results" / "runs" / "mnist_lt_demo"
RUN = "mnist_lt_sar_09b5d074a9"  # one run of the demo: sar + balanced softmax, seed 2
BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.M | re.S)


@pytest.fixture(scope="module")
def runs():
    return lt_bench.collect(DEMO)


def test_every_name_of_all_resolves_and_has_a_docstring():
    assert lt_bench.__all__ == list(lt_bench._API)
    for name in lt_bench.__all__:
        value = getattr(lt_bench, name)
        module, attribute = lt_bench._API[name].split(":")
        assert value is getattr(sys.modules[module], attribute)
        assert inspect.getdoc(value), f"lt_bench.{name} has no docstring"
    assert set(lt_bench.__all__) <= set(dir(lt_bench))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        lt_bench.not_a_name  # noqa: B018


def test_the_documented_entry_points_are_exported():
    wanted = {"load_config", "train", "collect", "write_report", "main_table", "load_study"}
    wanted |= {"retrain", "evaluate_run", "load_per_class", "load_curves", "per_class_accuracy"}
    assert wanted <= set(lt_bench.__all__)


def test_import_lt_bench_imports_no_torch_and_no_pandas():
    code = "import lt_bench, sys; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_loaders_import_no_torch():
    code = (
        "import sys; from lt_bench import load_per_class, load_curves, main_table, collect\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_package_is_typed():
    assert (ROOT / "lt_bench" / "py.typed").is_file()
    assert 'lt_bench = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


def test_api_page_examples_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    page = (ROOT / "docs" / "api.md").read_text()
    blocks = [(info, code) for info, code in BLOCK.findall(page)]
    run = [code for info, code in blocks if "no-run" not in info]
    assert len(run) >= 8
    namespace: dict = {}
    for code in run:
        exec(compile(code, "docs/api.md", "exec"), namespace)  # noqa: S102
    for info, code in blocks:  # the blocks not run still compile and use exported names only
        compile(code, "docs/api.md", "exec")
        for line in re.findall(r"^from lt_bench import \(?([^)]*?)\)?$", code, re.M | re.S):
            names = {n.strip() for n in line.replace("\n", ",").split(",") if n.strip()}
            assert names <= set(lt_bench.__all__), info


def test_per_class_loader_equals_the_run_files(runs):
    frame = load_per_class(DEMO, runs=runs)
    done = runs[runs.status == "done"]
    assert len(frame) == 10 * len(done)  # MNIST: 10 classes a run
    assert list(frame.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS.values())
    mine = frame[frame.run_dir == RUN].reset_index(drop=True)
    written = pd.read_csv(DEMO / RUN / "per_class.csv")
    pd.testing.assert_frame_equal(mine[list(written.columns)], written)
    row = runs[runs.run_dir == RUN].iloc[0]
    assert set(mine.label) == {row.label} and set(mine.seed) == {row.seed} == {2}
    assert set(mine.method) == {"sar"} and set(mine.ratio) == {100.0}
    alone = load_per_class(DEMO / RUN)  # one run folder: the same rows, the same label
    pd.testing.assert_frame_equal(alone, mine)


def test_curves_loader_equals_the_run_files(runs):
    frame = load_curves(DEMO, runs=runs)
    mine = frame[frame.run_dir == RUN].reset_index(drop=True)
    lines = [json.loads(line) for line in (DEMO / RUN / "metrics.jsonl").read_text().splitlines()]
    assert len(mine) == len(lines) and list(mine.epoch) == [line["epoch"] for line in lines]
    for (_, got), line in zip(mine.iterrows(), lines):
        assert {key: got[key] for key in line} == line
    assert set(mine.label) == set(runs.loc[runs.run_dir == RUN, "label"])
    assert frame.groupby("run_dir").size().to_dict() == {
        r: len((DEMO / r / "metrics.jsonl").read_text().splitlines())
        for r in runs[runs.status == "done"].run_dir
    }
