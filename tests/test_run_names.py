"""Readable run folder names (issue 21 item 6): ``<data>_<label>_s<seed>_<run id>``, the label a
study's arm label or the method, loss and options that differ; the run id alone finds a run, so a
folder made under an older name or another label is reused, never trained twice; the label is
never part of the run id."""

import pytest

from lt_bench.config import LABEL_CHARS, folder_label, load_config, run_id, run_label
from lt_bench.engine import train
from lt_bench.rundir import run_path
from lt_bench.study import expand, load_study
from tests.conftest import tiny

TINY = tiny("data.ratio=3", "optim.epochs=1", "optim.lr=0.05", train=12, test=3)


def cfg(tmp_path, *overrides):
    return load_config(None, [*TINY, f"out_dir={tmp_path}", *overrides])


@pytest.mark.parametrize(
    "overrides, label, folder",
    [
        ([], "none", "none_s0"),
        (["method.name=sar", "seed=2"], "sar", "sar_s2"),
        (
            ["method.name=sar", "method.trade_off=0", "loss.name=balanced_softmax"],
            "sar + balanced_softmax (trade_off=0)",
            "sar+balanced_softmax-trade_off=0_s0",
        ),
        (["method.name=sar", "method.trade_off=0.1"], "sar", "sar_s0"),  # the default: not shown
        (["label=SAR (no pull) + BS"], "SAR (no pull) + BS", "sar-no-pull+bs_s0"),
        (["label=a/b c:d"], "a/b c:d", "a-b-c-d_s0"),  # never a path separator
    ],
)
def test_the_label_and_folder_name_say_what_the_run_is(tmp_path, overrides, label, folder):
    config = cfg(tmp_path, *overrides)
    assert run_label(config) == label
    assert folder_label(config) == folder
    assert run_path(config) == tmp_path / f"synthetic_{folder}_{run_id(config)}"


def test_a_long_label_is_cut(tmp_path):
    config = cfg(tmp_path, "label=" + "x" * 100)
    assert folder_label(config) == "x" * LABEL_CHARS + "_s0"


def test_the_label_is_not_part_of_the_run_id(tmp_path):
    assert run_id(cfg(tmp_path, "label=mine")) == run_id(cfg(tmp_path))


def test_a_run_made_under_an_older_name_is_found_by_its_id(tmp_path):
    config = cfg(tmp_path, "method.name=center")
    old = tmp_path / f"synthetic_center_{run_id(config)}"  # the name before readable labels
    config_old = load_config(None, [*TINY, f"out_dir={tmp_path}", "method.name=center", f"name={old.name}"])
    first = train(config_old)
    assert run_path(config) == old
    again = train(cfg(tmp_path, "method.name=center", "label=another name"))
    assert again["wall_time_s"] == first["wall_time_s"]  # the same run returned, not retrained
    assert sorted(p.name for p in tmp_path.iterdir()) == [old.name]


STUDY = """
name: named
base: base.yaml
fixed: {optim.epochs: 1}
arms:
  - {method.name: none}
  - {method.name: sar, method.trade_off: 0, label: "SAR anchor-only"}
grid:
  seed: [0, 1]
"""


def test_a_study_arm_label_names_its_folders(tmp_path):
    from tests.test_sweep import BASE

    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(STUDY)
    points = expand(load_study(tmp_path / "study.yaml"), tmp_path / "runs")
    names = [p.run_dir.name.rsplit("_", 1)[0] for p in points]
    assert names == [
        "synthetic_none_s0",
        "synthetic_none_s1",
        "synthetic_sar-anchor-only_s0",
        "synthetic_sar-anchor-only_s1",
    ]
    assert [p.cfg.label for p in points] == [None, None, "SAR anchor-only", "SAR anchor-only"]


def test_a_lone_run_trained_with_a_label_is_shown_under_it(tmp_path):
    from lt_bench.report.collect import collect

    train(cfg(tmp_path, "method.name=center", "label=my center"))
    train(cfg(tmp_path))
    frame = collect(tmp_path)
    assert sorted(frame.label) == ["my center", "none"]
    assert sorted(p.name.rsplit("_", 1)[0] for p in tmp_path.iterdir() if p.is_dir()) == [
        "synthetic_my-center_s0",
        "synthetic_none_s0",
    ]
