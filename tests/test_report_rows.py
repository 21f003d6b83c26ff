"""One table row per setting, and paired comparisons with intervals, on hand-made run folders
whose numbers are chosen so every value can be checked by hand."""

import json
import math

import pandas as pd
import pytest
from omegaconf import OmegaConf

from lt_bench import atomic
from lt_bench.cli import main
from lt_bench.config import load_config, run_id
from lt_bench.errors import UserError
from lt_bench.report import write_report
from lt_bench.report.collect import collect
from lt_bench.report.compare import (
    aggregate_improvement,
    aggregate_iqm,
    aggregates,
    comparison_markdown,
    comparisons,
    iqm,
    paired_difference,
    stratified_bootstrap_iqm,
)

BASE = ["data.name=mnist_lt", "data.ratio=100", "optim.epochs=12", "optim.warmup_epochs=1"]


def fake_run(runs, overrides: list[str], seed: int, top1: float, few: float, **extra):
    """A finished run folder as lt-bench train writes it (config, split, final), no training."""
    cfg = load_config(None, [*BASE, *overrides, f"seed={seed}", f"out_dir={runs}"])
    folder = runs / f"run_{run_id(cfg)}"
    atomic.write_text(folder / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic.write_json(folder / "split.json", {"ratio": cfg.data.ratio})
    final = {"status": "done", "run_id": run_id(cfg), "top1": top1, "many": 0.9}
    final.update({"medium": 0.5, "few": few, "grouping": "absolute", **extra})
    atomic.write_json(folder / "final.json", final)
    return folder


def table_lines(path) -> str:
    """The table of a Markdown file, without the caption under it (tests/report/test_captions.py
    checks captions)."""
    return "".join(line for line in path.read_text().splitlines(True) if line.startswith("|"))


def table_rows(path) -> list[str]:
    return [line.split(" | ")[0].lstrip("| ") for line in table_lines(path).splitlines()[2:]]


def test_a_grid_over_method_options_gives_one_row_per_setting(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        fake_run(runs, ["method.name=none"], seed, 0.40 + seed / 100, 0.0)
        fake_run(runs, ["method.name=sar"], seed, 0.60 + seed / 100, 0.2)
        fake_run(runs, ["method.name=sar", "method.trade_off=0.5"], seed, 0.50, 0.1)
        fake_run(runs, ["method.name=sar", "method.detach_classifier=true"], seed, 0.40, 0.0)
        fake_run(
            runs,
            ["method.name=sar", "loss.name=balanced_softmax", "method.trade_off=0"],
            seed,
            0.7,
            0.3,
        )
    write_report(runs, tmp_path / "out", figures=False)
    assert table_lines(tmp_path / "out" / "main_table.md") == (
        "| Method | mnist_lt@100 All | mnist_lt@100 Many | mnist_lt@100 Medium | mnist_lt@100 Few | Seeds |\n"
        "|---|---|---|---|---|---|\n"
        "| none | 40.5 ± 0.7 | **90.0 ± 0.0** | **50.0 ± 0.0** | 0.0 ± 0.0 | 2 |\n"
        "| sar | 60.5 ± 0.7 | **90.0 ± 0.0** | **50.0 ± 0.0** | 20.0 ± 0.0 | 2 |\n"
        "| sar (detach_classifier=true) | 40.0 ± 0.0 | **90.0 ± 0.0** | **50.0 ± 0.0** | 0.0 ± 0.0 | 2 |\n"
        "| sar (trade_off=0.5) | 50.0 ± 0.0 | **90.0 ± 0.0** | **50.0 ± 0.0** | 10.0 ± 0.0 | 2 |\n"
        "| sar + balanced_softmax (trade_off=0) | **70.0 ± 0.0** | **90.0 ± 0.0** | **50.0 ± 0.0** | **30.0 ± 0.0** | 2 |\n"
    )
    csv = pd.read_csv(tmp_path / "out" / "main_table.csv")
    detached = csv[csv.method == "sar (detach_classifier=true)"].iloc[0]
    assert bool(detached["method.detach_classifier"]) is True
    assert detached["method.trade_off"] == 0.1 and detached["loss.name"] == "ce"


def test_a_grid_over_the_backbone_prefixes_the_model(tmp_path):
    runs = tmp_path / "runs"
    for method in ("none", "sar"):
        for model in ("resnet20_cifar", "resnet32_cifar"):
            fake_run(runs, [f"method.name={method}", f"model.name={model}"], 0, 0.5, 0.1)
    write_report(runs, tmp_path / "out", figures=False)
    assert table_rows(tmp_path / "out" / "main_table.md") == [
        "none",
        "resnet20_cifar / none",
        "resnet20_cifar / sar",
        "sar",
    ]  # resnet32_cifar is the schema's default model, so its rows carry no prefix


def test_a_default_written_out_is_the_same_setting(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, ["method.name=sar"], 0, 0.6, 0.2)
    fake_run(runs, ["method.name=sar", "method.trade_off=0.1", "train.eval_every=3"], 1, 0.62, 0.2)
    frame = collect(runs)
    assert list(frame.label) == ["sar", "sar"]  # one row, two seeds


def test_two_runs_of_one_row_and_seed_are_an_error_the_report_names(tmp_path, capsys):
    runs = tmp_path / "runs"
    fake_run(runs, ["method.name=sar"], 0, 0.6, 0.2)
    fake_run(runs, ["method.name=sar", "train.eval_every=3"], 0, 0.61, 0.2)  # not a setting
    with pytest.raises(UserError, match="row 'sar' on mnist_lt@100 has 2 done runs of seed 0"):
        collect(runs)
    assert main(["report", str(runs), "--out", str(tmp_path / "out")]) == 2
    assert "remove all but one" in capsys.readouterr().err and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- comparisons


def test_paired_t_interval_by_hand():
    # Differences 0.10, 0.15, 0.20: mean 0.15, sd 0.05, se 0.05 / sqrt 3, t(0.975, 2) = 4.302653.
    result = paired_difference([0.50, 0.60, 0.70], [0.40, 0.45, 0.50])
    half = 4.302653 * 0.05 / math.sqrt(3)
    assert result["n"] == 3 and result["mean"] == pytest.approx(0.15)
    assert result["low"] == pytest.approx(0.15 - half, abs=1e-6)
    assert result["high"] == pytest.approx(0.15 + half, abs=1e-6)
    assert result["excludes_zero"] is True
    # Every seed won; over all 9 pairs one is a tie (0.50 and 0.50): P(improvement) 8.5 / 9.
    assert result["seeds_won"] == 1.0 and result["p_improvement"] == pytest.approx(8.5 / 9)
    # A win, a tie and a loss: (1 + 0.5 + 0) / 3 seeds won; each 0.5 against 0.4, 0.5, 0.6 too.
    mixed = paired_difference([0.5, 0.5, 0.5], [0.4, 0.5, 0.6])
    assert mixed["mean"] == pytest.approx(0.0) and mixed["seeds_won"] == pytest.approx(0.5)
    assert mixed["p_improvement"] == pytest.approx(0.5)
    assert mixed["excludes_zero"] is False
    single = paired_difference([0.6], [0.5])
    assert math.isnan(single["low"]) and single["excludes_zero"] is False


def test_the_comparison_table_pairs_seeds_with_the_matching_baseline(tmp_path):
    runs = tmp_path / "runs"
    for seed, (none, sar, bs_none, bs_sar) in enumerate(
        [(0.40, 0.50, 0.60, 0.58), (0.45, 0.60, 0.62, 0.66), (0.50, 0.70, 0.64, 0.70)]
    ):
        fake_run(runs, ["method.name=none"], seed, none, none / 10)
        fake_run(runs, ["method.name=sar"], seed, sar, sar / 10)
        fake_run(runs, ["method.name=none", "loss.name=balanced_softmax"], seed, bs_none, 0.1)
        fake_run(runs, ["method.name=sar", "loss.name=balanced_softmax"], seed, bs_sar, 0.1)
    write_report(runs, tmp_path / "out", figures=False)
    table = pd.read_csv(tmp_path / "out" / "comparison_table.csv")
    sar = table[(table.row == "sar") & (table.metric == "top1")].iloc[0]
    assert sar.baseline == "none" and sar.n == 3
    assert sar["mean"] == pytest.approx(0.15) and sar.low == pytest.approx(
        0.15 - 0.124211, abs=1e-5
    )
    bs = table[(table.row == "sar + balanced_softmax") & (table.metric == "top1")].iloc[0]
    assert bs.baseline == "none + balanced_softmax"  # same loss, never the CE baseline
    assert bs["mean"] == pytest.approx(0.026667, abs=1e-6)
    assert bs.seeds_won == pytest.approx(2 / 3) and bs.p_improvement == pytest.approx(6 / 9)
    assert bool(bs.excludes_zero) is False
    few = table[(table.row == "sar") & (table.metric == "few")].iloc[0]
    assert few["mean"] == pytest.approx(0.015)  # the smallest non-empty shot group
    markdown = (tmp_path / "out" / "comparison_table.md").read_text()
    # sar's 0.50 ties none's 0.50: P(improvement) 8.5 / 9 over the pairs, though every seed won.
    assert (
        "| mnist_lt@100 | sar | none | top-1 | +15.0* | [+2.6, +27.4] | 0.94 | 1.00 | 3 |"
        in markdown
    )
    assert "95% paired t interval" in markdown
    assert "## Paired comparisons" in (tmp_path / "out" / "report.md").read_text()

    # --baseline compares every row with one chosen row.
    assert (
        main(
            [
                "report",
                str(runs),
                "--out",
                str(tmp_path / "o2"),
                "--no-figures",
                "--baseline",
                "sar",
            ]
        )
        == 0
    )
    chosen = pd.read_csv(tmp_path / "o2" / "comparison_table.csv")
    assert set(chosen.baseline) == {"sar"} and "sar" not in set(chosen.row)
    assert main(["report", str(runs), "--out", str(tmp_path / "o3"), "--baseline", "sra"]) == 2
    assert not (tmp_path / "o3").exists()


def test_iqm_and_its_stratified_bootstrap():
    import numpy as np

    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    assert iqm(scores) == pytest.approx(4.5)  # the middle half of 1..8
    rng = np.random.default_rng(0)
    same = np.array([[0.2, 0.8]] * 3)  # identical runs within each task: no spread to resample
    assert stratified_bootstrap_iqm(same, 200, rng) == pytest.approx((0.5, 0.5))
    low, high = stratified_bootstrap_iqm(scores, 2000, np.random.default_rng(1))
    assert low < iqm(scores) < high and (low, high) == stratified_bootstrap_iqm(
        scores, 2000, np.random.default_rng(1)
    )


def test_aggregate_normalises_each_task(tmp_path):
    runs = tmp_path / "runs"
    for ratio, (low, high) in ((10, (0.8, 0.9)), (100, (0.4, 0.6))):
        for seed in (0, 1):
            fake_run(runs, ["method.name=none", f"data.ratio={ratio}"], seed, low, 0.1)
            fake_run(runs, ["method.name=sar", f"data.ratio={ratio}"], seed, high, 0.1)
    aggregate = aggregate_iqm(collect(runs)).set_index("row")
    # Min-max per task: none is the worst row on both tasks (0), sar the best (1).
    assert aggregate.loc["none", "iqm"] == pytest.approx(0.0)
    assert aggregate.loc["sar", "iqm"] == pytest.approx(1.0)
    assert aggregate.loc["sar", "runs"] == 4 and aggregate.loc["sar", "tasks"] == 2
    assert json.loads(collect(runs).settings.iloc[0])["data.ratio"] in ("10", "100")


def test_the_fraction_of_seeds_won_is_not_called_the_probability_of_improvement(tmp_path):
    """Seeds 0, 1, 2: the row wins 2 of 3 seed pairs but only 5 of the 9 pairs of runs (0.5 and
    0.6 beat 0.45 only), so the two statistics differ and each keeps its own name."""
    runs = tmp_path / "runs"
    for seed, (none, sar) in enumerate([(0.45, 0.5), (0.7, 0.6), (0.8, 0.9)]):
        fake_run(runs, ["method.name=none"], seed, none, 0.1)
        fake_run(runs, ["method.name=sar"], seed, sar, 0.1)
    write_report(runs, tmp_path / "out", figures=False)
    table = pd.read_csv(tmp_path / "out" / "comparison_table.csv")
    top1 = table[table.metric == "top1"].iloc[0]
    assert top1.p_improvement == pytest.approx(5 / 9) and top1.seeds_won == pytest.approx(2 / 3)
    markdown = (tmp_path / "out" / "comparison_table.md").read_text()
    assert "| P(improvement) | Seeds won | Seeds |" in markdown
    assert (
        "| mnist_lt@100 | sar | none | top-1 | +1.7 | [−24.2, +27.5] | 0.56 | 0.67 | 3 |"
        in markdown
    )
    caption = markdown.split("\n")[0]
    assert "P(improvement): rliable's probability of improvement" in caption
    assert "P(X > Y) + ½ P(X = Y) over all N × N pairs" in caption
    assert "Seeds won: the fraction of seeds" in caption
    assert "probability of improvement (the fraction" not in markdown.lower()
    latex = (tmp_path / "out" / "comparison_table.tex").read_text()
    assert r"P(improvement) & Seeds won & Seeds \\" in latex
    assert "% P(improvement): rliable's probability of improvement" in latex
    assert "% Seeds won: fraction of seeds" in latex


def two_tasks(runs, seeds=(0, 1, 2)):
    """none and sar on mnist_lt@10 and @100; P(improvement) of sar 8/9 on @10, 3/9 on @100."""
    scores = {
        10: ([0.40, 0.45, 0.50], [0.48, 0.60, 0.70]),
        100: ([0.80, 0.82, 0.84], [0.81, 0.83, 0.79]),
    }
    for ratio, (none, sar) in scores.items():
        for seed in seeds:
            fake_run(runs, ["method.name=none", f"data.ratio={ratio}"], seed, none[seed], 0.1)
            fake_run(runs, ["method.name=sar", f"data.ratio={ratio}"], seed, sar[seed], 0.1)
    return collect(runs)


def test_probability_of_improvement_across_tasks_with_its_interval(tmp_path):
    collected = two_tasks(tmp_path / "runs")
    improvement = aggregate_improvement(collected).set_index("row")
    assert list(improvement.index) == ["sar"]  # the baseline gets no record of its own
    sar = improvement.loc["sar"]
    assert sar.baseline == "none" and sar.tasks == 2 and sar.runs == 6 and sar.baseline_runs == 6
    assert sar.p_improvement == pytest.approx((8 / 9 + 3 / 9) / 2)
    assert sar.low < sar.p_improvement < sar.high and sar.note is None
    assert (sar.low, sar.high) == tuple(aggregate_improvement(collected).loc[0, ["low", "high"]])
    # --baseline sar: none is now the row, sar the baseline.
    chosen = aggregate_improvement(collected, baseline="sar").set_index("row")
    assert chosen.loc["none", "p_improvement"] == pytest.approx(1 - (8 / 9 + 3 / 9) / 2)

    both = aggregates(collected).set_index("row")
    assert both.loc["sar", "p_improvement"] == pytest.approx(11 / 18)
    assert both.loc["sar", "iqm_low"] < both.loc["sar", "iqm"] < both.loc["sar", "iqm_high"]
    markdown = comparison_markdown(comparisons(collected), aggregates(collected))
    assert "| Row | IQM | 95% CI | Runs | Baseline | P(improvement) | 95% CI |" in markdown
    line = next(x for x in markdown.splitlines() if x.startswith("| sar | "))
    assert line.count("[") == 2 and "| none | 0.611 |" in line
    assert "50,000 resamples" in markdown and "–: no interval" not in markdown


@pytest.mark.parametrize(
    "ratios, seeds, reason, improvement",
    [
        ((100,), (0, 1, 2), "3 runs over 1 task", 6 / 9),  # 1.5 + 2 + 2.5 of 9 pairs
        ((10, 100), (0,), "2 runs over 2 tasks", 1.0),  # 0.5 > 0.4
        ((10, 100), (0, 1), "4 runs over 2 tasks", 3.5 / 4),  # 0.5 ties 0.5: 1 + 0.5 + 1 + 1
    ],
)
def test_no_interval_with_too_few_tasks_or_runs(tmp_path, ratios, seeds, reason, improvement):
    """An interval needs 2 tasks and 3 runs on each (compare.MIN_TASKS, MIN_RUNS_PER_TASK): with
    fewer, the point estimate and how many runs and tasks it rests on; with one task, no
    aggregate table at all (it would restate the paired comparisons)."""
    runs = tmp_path / "runs"
    for ratio in ratios:
        for seed in seeds:
            none, sar = [0.4, 0.5, 0.6][seed], [0.5, 0.55, 0.6][seed]
            fake_run(runs, ["method.name=none", f"data.ratio={ratio}"], seed, none, 0.1)
            fake_run(runs, ["method.name=sar", f"data.ratio={ratio}"], seed, sar, 0.1)
    collected = collect(runs)
    both = aggregates(collected).set_index("row")
    assert both.iqm.notna().all() and both.iqm_low.isna().all() and both.iqm_high.isna().all()
    assert set(both.note) == {f"interval not shown: {reason}"}
    assert both.loc["sar", "p_improvement"] == pytest.approx(improvement)
    assert math.isnan(both.loc["sar", "p_improvement_low"])
    assert both.loc["sar", "improvement_note"] == f"interval not shown: {reason}"
    markdown = comparison_markdown(comparisons(collected), both.reset_index())
    if len(ratios) == 1:
        assert "| Row | IQM |" not in markdown and markdown.endswith(
            "\n\nNo aggregate across data sets @ ratio: these runs have one (mnist_lt@100), and "
            "an aggregate over fewer than 2 would restate the paired comparisons above "
            "(comparison_aggregate.csv keeps its point estimates).\n"
        )
    else:
        aggregate = markdown.split("Across all data sets")[1]
        assert "[" not in aggregate.split("\n\n", 1)[1]  # no interval printed
        sar = next(line for line in aggregate.splitlines() if line.startswith("| sar |"))
        assert sar == (
            f"| sar | {both.loc['sar', 'iqm']:.3f} | interval not shown: {reason} | "
            f"{2 * len(seeds)} | none | {improvement:.3f} | interval not shown: {reason} |"
        )
        assert "shown only with at least 2 tasks and 3 runs on each" in aggregate
    report = tmp_path / "out"
    write_report(runs, report, figures=False)
    aggregate = pd.read_csv(report / "comparison_aggregate.csv")
    assert aggregate.iqm_low.isna().all() and set(aggregate.note) == {
        f"interval not shown: {reason}"
    }
    assert (report / "comparison_table.md").read_text() == markdown


def test_tuned_arms_are_compared_with_the_none_arm_of_their_loss(tmp_path):
    """Tuned arms differ in the values each tuned for itself (lr here); their baseline is still
    the none row of the same loss, matched on everything else."""
    runs = tmp_path / "runs"
    tuned = {"values": {"optim.lr": 0.03}, "trial": 0}
    for seed in (0, 1):
        fake_run(runs, ["method.name=none", "optim.lr=0.03"], seed, 0.40, 0.1, tuned=tuned)
        sar = {"values": {"optim.lr": 0.07, "method.trade_off": 0.2}, "trial": 1}
        fake_run(
            runs,
            ["method.name=sar", "optim.lr=0.07", "method.trade_off=0.2"],
            seed,
            0.50 + seed / 100,
            0.2,
            tuned=sar,
        )
        fake_run(runs, ["method.name=center", "optim.lr=0.5"], seed, 0.3, 0.1)  # not tuned
    write_report(runs, tmp_path / "out", figures=False)
    compared = pd.read_csv(tmp_path / "out" / "comparison_table.csv")
    sar = compared[(compared.row.str.startswith("sar")) & (compared.metric == "top1")].iloc[0]
    assert sar.baseline.startswith("none") and sar["mean"] == pytest.approx(0.105)
    assert not compared.row.str.startswith("center").any()  # its lr was not tuned: no twin
