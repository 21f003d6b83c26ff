"""Row labels stay short and never show a tuned value; the settings table shows every value they
leave out; a study's names (labels.json) rename rows and columns in every table."""

import json

import pandas as pd
import pytest

from lt_bench import atomic
from lt_bench.cli import main
from lt_bench.errors import UserError
from lt_bench.report import write_report
from lt_bench.report.collect import collect
from lt_bench.report.labels import short_value
from lt_bench.report.typeset import tex
from tests.test_report_rows import fake_run, table_rows

LR, WD = 0.110153, 0.000130704  # tuned values, as a search draws them: full precision


def tuned_study(runs, seeds=(0, 1)):
    """A tuned study's finals: each arm with the values its search chose (final.json["tuned"]),
    and one arm (sar, trade_off 0) whose trade_off is its own, not tuned."""
    folders = {}
    for seed in seeds:
        arms = {
            "none": ([], {"optim.lr": LR, "optim.weight_decay": WD}, 0.68),
            "center": (
                [], {"optim.lr": LR, "optim.weight_decay": WD, "method.weight": 0.00191403}, 0.67
            ),
            "sar": (
                [], {"optim.lr": 0.0971787, "optim.weight_decay": 3.02262e-05,
                     "method.trade_off": 0.112515}, 0.72,
            ),
            "no_pull": (["method.trade_off=0"], {"optim.lr": LR, "optim.weight_decay": WD}, 0.73),
        }  # fmt: skip
        for arm, (fixed, values, top1) in arms.items():
            method = "sar" if arm == "no_pull" else arm
            overrides = [f"method.name={method}", *fixed]
            overrides += [f"{key}={value}" for key, value in values.items()]
            tuned = {"values": values, "trial": 1}
            folder = fake_run(runs, overrides, seed, top1 + seed / 100, 0.1, tuned=tuned)
            folders.setdefault(arm, []).append(folder.name)
    return folders


def test_labels_never_show_a_tuned_value(tmp_path):
    runs = tmp_path / "runs"
    tuned_study(runs)
    write_report(runs, tmp_path / "out", figures=False)
    out = tmp_path / "out"
    assert table_rows(out / "main_table.md") == ["none", "center", "sar", "sar (trade_off=0)"]
    for name in ("main_table.md", "main_table.tex", "comparison_table.md", "ratio_table.md"):
        text = (out / name).read_text()
        assert "lr=" not in text and "weight=" not in text and "0.1125" not in text, name


def test_the_settings_table_shows_every_varying_and_tuned_value(tmp_path):
    runs = tmp_path / "runs"
    tuned_study(runs)
    write_report(runs, tmp_path / "out", figures=False)
    lines = (tmp_path / "out" / "settings.md").read_text().splitlines()
    assert lines[:6] == [
        "| Row | method.name | method.trade_off | method.weight | optim.lr | optim.weight_decay |",
        "|---|---|---|---|---|---|",
        "| none | none | – | – | 0.1102‡ | 0.0001307‡ |",
        "| center | center | – | 0.001914‡ | 0.1102‡ | 0.0001307‡ |",
        "| sar | sar | 0.1125‡ | – | 0.09718‡ | 3.023e-05‡ |",
        "| sar (trade_off=0) | sar | 0 | – | 0.1102‡ | 0.0001307‡ |",
    ]  # trade_off 0 is the arm's own, not tuned: no ‡
    assert "‡: chosen for the row on validation" in lines[7]
    csv = pd.read_csv(tmp_path / "out" / "settings.csv").set_index("row")
    assert csv.loc["center", "method.weight"] == pytest.approx(0.00191403)  # in full
    assert csv.loc["sar", "tuned"] == "method.trade_off, optim.lr, optim.weight_decay"
    assert csv.loc["sar (trade_off=0)", "tuned"] == "optim.lr, optim.weight_decay"


def test_values_in_labels_have_at_most_four_significant_digits():
    assert [short_value(v) for v in ("0.110153", "3.02262e-05", "0.5", "100", "true", "adam")] == [
        "0.1102",
        "3.023e-05",
        "0.5",
        "100",
        "true",
        "adam",
    ]


def test_settings_that_would_share_a_label_are_told_apart(tmp_path):
    """Shortened to 4 digits, two trade-offs would read the same; two searches' finals differ only
    in a tuned value: each keeps a row of its own, told apart at full precision."""
    runs = tmp_path / "runs"
    fake_run(runs, ["method.name=sar", "method.trade_off=0.123456"], 0, 0.5, 0.1)
    fake_run(runs, ["method.name=sar", "method.trade_off=0.123457"], 0, 0.6, 0.1)
    for lr in (0.03, 0.07):
        fake_run(runs, ["method.name=none", f"optim.lr={lr}"], 0, 0.4, 0.1,
                 tuned={"values": {"optim.lr": lr}, "trial": 0})  # fmt: skip
    assert sorted(set(collect(runs).label)) == [
        "none (optim.lr=0.03)",
        "none (optim.lr=0.07)",
        "sar (trade_off=0.123456)",
        "sar (trade_off=0.123457)",
    ]


def name_rows(runs, folders, rows: dict, columns: dict | None = None) -> None:
    """labels.json as the sweep writes it: every run folder of an arm named."""
    named = {folder: rows[arm] for arm, names in folders.items() if arm in rows for folder in names}
    atomic.write_json(runs / "labels.json", {"rows": named, "columns": columns or {}})


def test_a_studys_names_rename_rows_and_columns_in_every_table(tmp_path, capsys):
    runs = tmp_path / "runs"
    folders = tuned_study(runs)
    columns = {"mnist_lt@100": "MNIST-LT ρ=100"}
    name_rows(runs, folders, {"no_pull": "SAR (no pull) & BS_1", "none": "CE"}, columns)
    collected = collect(runs)
    assert set(collected.label) == {"CE", "center", "sar", "SAR (no pull) & BS_1"}
    assert set(collected.auto_label) == {"none", "center", "sar", "sar (trade_off=0)"}
    assert set(collected.dataset) == {"mnist_lt@100"}  # the data set stays what it is
    assert set(collected.dataset_label) == {"MNIST-LT ρ=100"}
    assert main(["report", str(runs), "--out", str(tmp_path / "out"), "--no-figures"]) == 0
    out = tmp_path / "out"
    main_md = (out / "main_table.md").read_text()
    assert main_md.startswith("| Method | MNIST-LT ρ=100 All | MNIST-LT ρ=100 Many |")
    assert table_rows(out / "main_table.md") == ["CE", "center", "sar", "SAR (no pull) & BS_1"]
    latex = (out / "main_table.tex").read_text()
    assert r"\multicolumn{4}{c}{MNIST-LT $\rho$=100}" in latex
    assert "\nSAR (no pull) \\& BS\\_1 & " in latex
    csv = pd.read_csv(out / "main_table.csv")
    assert set(csv.group) == {"mnist_lt@100"} and set(csv.column) == {"MNIST-LT ρ=100"}
    comparison = (out / "comparison_table.md").read_text()
    assert "| MNIST-LT ρ=100 | SAR (no pull) & BS_1 | CE | top-1 |" in comparison
    assert "| ratio " not in (out / "ratio_table.md").read_text()
    assert "MNIST-LT ρ=100 All" in (out / "ratio_table.md").read_text()
    assert "| SAR (no pull) & BS_1 | sar | 0 |" in (out / "settings.md").read_text()
    # --baseline names a row as the tables show it.
    assert main(["report", str(runs), "--out", str(tmp_path / "o2"), "--no-figures",
                 "--baseline", "SAR (no pull) & BS_1"]) == 0  # fmt: skip
    chosen = pd.read_csv(tmp_path / "o2" / "comparison_table.csv")
    assert set(chosen.baseline) == {"SAR (no pull) & BS_1"}
    capsys.readouterr()


def test_names_that_would_merge_rows_are_refused_in_one_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    folders = tuned_study(runs)
    name_rows(runs, folders, {"sar": "SAR", "no_pull": "SAR"})
    with pytest.raises(UserError, match=r"rows 'sar' and 'sar \(trade_off=0\)' on mnist_lt@100 "
                       r"would both be named 'SAR'"):  # fmt: skip
        collect(runs)
    name_rows(runs, folders, {"sar": "center"})  # another row's automatic name
    with pytest.raises(UserError, match="would both be named 'center'"):
        collect(runs)
    # Two names for one row: its seeds disagree.
    atomic.write_json(
        runs / "labels.json",
        {"rows": {folders["sar"][0]: "SAR", folders["sar"][1]: "SAR!"}, "columns": {}},
    )
    with pytest.raises(UserError, match="names row 'sar' on mnist_lt@100 both 'SAR' and 'SAR!'"):
        collect(runs)
    (runs / "labels.json").write_text('{"rows": ["not", "a", "mapping"]}')
    assert main(["report", str(runs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "labels.json is damaged (ValueError)" in err


def test_a_labelled_row_keeps_its_name_on_every_seed(tmp_path):
    """One named seed names the row (a seed run by hand after the sweep wrote labels.json)."""
    runs = tmp_path / "runs"
    folders = tuned_study(runs)
    atomic.write_json(runs / "labels.json", {"rows": {folders["sar"][0]: "SAR"}, "columns": {}})
    frame = collect(runs)
    assert set(frame.loc[frame.auto_label == "sar", "label"]) == {"SAR"}


def test_latex_escapes_every_special_character_of_a_name():
    assert tex("SAR & BS_1 (50%) #2 {x} ~ ^ $ \\ ρ=100 −0.2 ± 1") == (
        r"SAR \& BS\_1 (50\%) \#2 \{x\} \textasciitilde{} \textasciicircum{} \$ "
        r"\textbackslash{} $\rho$=100 $-$0.2 $\pm$ 1"
    )


def test_every_table_keeps_its_settings_per_row_in_its_csv(tmp_path):
    runs = tmp_path / "runs"
    tuned_study(runs)
    write_report(runs, tmp_path / "out", figures=False)
    csv = pd.read_csv(tmp_path / "out" / "main_table.csv")
    center = csv[csv.method == "center"].iloc[0]
    assert center["method.weight"] == pytest.approx(0.00191403) and center["optim.lr"] == LR
    assert json.loads(collect(runs).tuned.iloc[0]) in (
        {"optim.lr": LR, "optim.weight_decay": WD},
        {"optim.lr": LR, "optim.weight_decay": WD, "method.weight": 0.00191403},
        {"optim.lr": 0.0971787, "optim.weight_decay": 3.02262e-05, "method.trade_off": 0.112515},
        {"optim.lr": LR, "optim.weight_decay": WD},
    )
