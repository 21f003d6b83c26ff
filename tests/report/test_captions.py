"""Every table says what its cells are: the shot grouping of Many / Medium / Few (an empty group
shown as – with why, never filled from another grouping), and mean ± sample std over the seeds;
runs of two groupings are refused, never mixed in one table."""

import pandas as pd
import pytest

from lt_bench.cli import main
from lt_bench.config import GROUPINGS
from lt_bench.data import groups
from lt_bench.errors import UserError
from lt_bench.report import write_report
from lt_bench.report.collect import collect
from lt_bench.report.tables import captions
from lt_bench.report.tables.captions import spread_caption
from tests.test_report_rows import fake_run

ABSOLUTE = "Many/Medium/Few: absolute groups, >100 / 20-100 / <20 training images"


def test_every_table_states_its_grouping_and_what_plus_minus_is(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        fake_run(runs, ["method.name=none"], seed, 0.40 + seed / 100, 0.1)
        fake_run(runs, ["method.name=sar"], seed, 0.60, 0.2)
    write_report(runs, tmp_path / "out", figures=False)
    out = tmp_path / "out"
    markdown = (out / "main_table.md").read_text()
    assert f"\n\n{ABSOLUTE}.\nCells: mean ± sample std over 2 seeds.\n" in markdown
    assert (
        (out / "main_table.tex")
        .read_text()
        .endswith(
            r"\par\smallskip{\footnotesize Many/Medium/Few: absolute groups, $>$100 / 20--100 / "
            r"$<$20 training images. Cells: mean $\pm$ sample std over 2 seeds.}" + "\n"
        )
    )
    # The tables with a shot-group column state the grouping (these runs have no separability
    # values: no cell, so no ± to explain).
    for name in ("main_table", "centroid_table", "separability_table"):
        assert f"\n\n{ABSOLUTE}.\n" in (out / f"{name}.md").read_text(), name
        assert "absolute groups, $>$100" in (out / f"{name}.tex").read_text(), name
        assert set(pd.read_csv(out / f"{name}.csv")["grouping"]) == {"absolute"}, name
    ratio = (out / "ratio_table.md").read_text()  # top-1 only: no grouping to state
    assert "Cells: mean ± sample std over 2 seeds." in ratio and "Many/Medium/Few" not in ratio
    assert f"{ABSOLUTE}." in (out / "report.md").read_text()


def test_an_empty_group_is_shown_empty_with_why(tmp_path):
    runs = tmp_path / "runs"
    sizes = {"many": 8, "medium": 2, "few": 0}  # CIFAR-10-LT: no class below 20 images
    for seed in (0, 1):
        fake_run(runs, ["method.name=none"], seed, 0.7, None, group_sizes=sizes)
    write_report(runs, tmp_path / "out", figures=False)
    table = (tmp_path / "out" / "main_table.md").read_text()
    assert (
        table.splitlines()[2]
        == "| none | **70.0 ± 0.0** | **90.0 ± 0.0** | **50.0 ± 0.0** | – | 2 |"
    )
    assert f"{ABSOLUTE}; – in Few: no class has <20 training images (mnist_lt@100).\n" in table
    frame = pd.read_csv(tmp_path / "out" / "main_table.csv")
    few = frame[frame.metric == "Few"].iloc[0]
    assert pd.isna(few["mean"]) and few.seeds == 0


def test_terciles_are_named_and_their_empty_group_explained(tmp_path):
    runs = tmp_path / "runs"
    sizes = {"many": 50, "medium": 0, "few": 50}  # a step profile: two sizes, never split
    fake_run(
        runs, ["data.grouping=terciles"], 0, 0.5, 0.1, medium=None, grouping="terciles",
        group_sizes=sizes,
    )  # fmt: skip
    write_report(runs, tmp_path / "out", figures=False)
    table = (tmp_path / "out" / "main_table.md").read_text()
    assert "Many/Medium/Few: class-size terciles (classes of equal size share a group" in table
    assert "– in Medium: no class size is left for the medium tercile" in table
    assert "Cells: one seed each, so no ± is shown." in table


def test_a_study_mixing_groupings_is_refused_naming_its_runs(tmp_path, capsys):
    runs = tmp_path / "runs"
    absolute = fake_run(runs, ["method.name=none"], 0, 0.5, 0.1)
    terciles = fake_run(runs, ["data.grouping=terciles"], 1, 0.5, 0.1, grouping="terciles")
    message = (
        f"the done runs use 2 shot groupings (absolute: {absolute.name}; terciles: "
        f"{terciles.name}) and one table never mixes them"
    )
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        collect(runs)
    with pytest.raises(UserError, match="one table never mixes them"):
        write_report(runs, tmp_path / "out", figures=False)
    assert main(["report", str(runs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_spread_caption_says_sample_std_and_the_seeds():
    assert spread_caption([3, 3, 0]) == "Cells: mean ± sample std over 3 seeds."
    assert spread_caption([3, 2]) == (
        "Cells: mean ± sample std over each row's seeds, as its Seeds column says."
    )
    assert spread_caption([1, 2]).endswith("(a cell of one seed shows no ±).")
    assert spread_caption([1, 0]) == "Cells: one seed each, so no ± is shown."


def test_captions_agree_with_the_grouping_rules():
    # The report repeats the thresholds (importing lt_bench.data imports torch): kept equal here.
    assert (captions.MANY_ABOVE, captions.FEW_BELOW) == (groups.MANY_ABOVE, groups.FEW_BELOW)
    assert captions.SHOT_GROUPS == groups.GROUPS
    for grouping in GROUPINGS:
        assert grouping in captions.GROUPING_CAPTIONS and grouping in captions.EMPTY_GROUP_NOTES
    counts = [101, 100, 20, 19]  # the boundary classes fall where the caption says
    split, _ = groups.choose_shot_groups(counts)
    assert {k: v.tolist() for k, v in split.items()} == {"many": [0], "medium": [1, 2], "few": [3]}
