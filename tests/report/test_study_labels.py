"""A study names its rows (an arm's ``label``) and columns (``labels``); the sweep saves the names
in the runs folder (labels.json), where the report finds them; no name changes a run id."""

import json

import pytest
from omegaconf import OmegaConf

from lt_bench import atomic
from lt_bench.config import run_id
from lt_bench.errors import UserError
from lt_bench.report.collect import collect
from lt_bench.study import expand, load_study, run_study
from tests.test_sweep import BASE

NAMED = """
name: named
base: base.yaml
fixed: {optim.epochs: 1}
arms:
  - {method.name: none, label: CE}
  - {method.name: sar, method.trade_off: 0, label: SAR (no pull)}
  - {method.name: sar}
grid:
  data.ratio: [4, 10]
  seed: [0, 1]
labels:
  synthetic@4: Synthetic ρ=4
"""


def write_study(tmp_path, text: str):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(text)
    return tmp_path / "study.yaml"


def test_labels_are_read_apart_from_the_arms_and_change_no_run_id(tmp_path):
    study = load_study(write_study(tmp_path, NAMED))
    assert study.arms == [
        {"method.name": "none"},
        {"method.name": "sar", "method.trade_off": 0},
        {"method.name": "sar"},
    ]
    assert study.arm_labels == ["CE", "SAR (no pull)", None]
    assert study.column_labels == {"synthetic@4": "Synthetic ρ=4"}
    unnamed = NAMED.replace(", label: CE", "").replace(", label: SAR (no pull)", "")
    unnamed = unnamed.split("labels:")[0]
    (tmp_path / "plain").mkdir()
    plain = load_study(write_study(tmp_path / "plain", unnamed))
    named_ids = [run_id(p.cfg) for p in expand(study, tmp_path / "runs")]
    assert named_ids == [run_id(p.cfg) for p in expand(plain, tmp_path / "runs")]
    # The label travels in the config as the non-identity key ``label`` (folder and tracker names).
    assert [p.cfg.label for p in expand(study, "r")][::4] == ["CE", "SAR (no pull)", None]


@pytest.mark.parametrize(
    "change, message",
    [
        (("label: CE}", "label: ''}"), "has label ''; a label is a non-empty string"),
        (("label: CE}", "label: [CE]}"), "a label is a non-empty string"),
        (("label: CE}", "label: SAR (no pull)}"), "two arms have label 'SAR (no pull)'"),
        (("  seed: [0, 1]", "  seed: [0, 1]\n  optim.lr: [0.1, 0.2]"),
         "grid key 'optim.lr' would give each arm label to several rows"),
        (("synthetic@4:", "sar:"), "labels key 'sar' is not a column of this study"),
        (("synthetic@4:", "cifar10_lt@4:"), "data sets: synthetic"),
        (("Synthetic ρ=4", "''"), "labels.synthetic@4 is ''"),
        (("labels:\n  synthetic@4: Synthetic ρ=4", "labels: [a]"), "labels must be a mapping"),
    ],
)  # fmt: skip
def test_bad_labels_are_one_line_errors(tmp_path, change, message):
    path = write_study(tmp_path, NAMED.replace(*change))
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_study(path)
    assert "\n" not in str(err.value)


def test_the_sweep_saves_the_names_beside_the_runs(tmp_path):
    study = load_study(write_study(tmp_path, NAMED.replace("labels:", "stages: [crt]\nlabels:")))
    runs = tmp_path / "runs"
    (phase,) = run_study(study, runs)  # a first status pass writes nothing
    assert not (runs / "labels.json").exists()
    run_study(study, runs, launcher=lambda points: [])
    saved = json.loads((runs / "labels.json").read_text())
    expected = {}
    for point in phase.points[:8]:  # the two labelled arms, 2 ratios x 2 seeds each
        name = "CE" if point.cfg.method.name == "none" else "SAR (no pull)"
        expected[point.run_dir.name] = name
        expected[f"{point.run_dir.name}__crt"] = f"{name} + cRT"
    assert saved == {
        "study": "named",
        "rows": expected,
        "columns": {"synthetic@4": "Synthetic ρ=4"},
    }
    # A study that names nothing now: the old names go.
    plain = load_study(write_study(tmp_path, "base: base.yaml\ngrid:\n  seed: [0]\n"))
    run_study(plain, runs, launcher=lambda points: [])
    assert not (runs / "labels.json").exists()


def test_the_report_shows_the_names_the_sweep_saved(tmp_path):
    study = load_study(write_study(tmp_path, NAMED))
    runs = tmp_path / "runs"
    (phase,) = run_study(study, runs, launcher=lambda points: [])
    for point in phase.points:  # each point as a finished run, without training
        folder = point.run_dir
        atomic.write_text(folder / "config.yaml", OmegaConf.to_yaml(point.cfg, resolve=True))
        atomic.write_json(folder / "split.json", {"ratio": point.cfg.data.ratio})
        final = {"status": "done", "run_id": run_id(point.cfg), "top1": 0.5, "many": 0.6}
        atomic.write_json(folder / "final.json", {**final, "medium": 0.4, "few": 0.1})
    frame = collect(runs)
    names = frame.groupby("auto_label").label.agg(set).to_dict()
    assert names == {"none": {"CE"}, "sar": {"sar"}, "sar (trade_off=0)": {"SAR (no pull)"}}
    columns = frame.groupby("dataset").dataset_label.agg(set).to_dict()
    assert columns == {"synthetic@4": {"Synthetic ρ=4"}, "synthetic@10": {"synthetic@10"}}
