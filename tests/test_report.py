import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from lt_bench.cli import main
from lt_bench.report import write_report
from lt_bench.report.collect import collect

FIXTURES = Path(__file__).parent / "fixtures"


def test_collect_reads_every_run_with_its_status():
    runs = collect(FIXTURES / "runs")
    assert len(runs) == 10
    assert runs.status.value_counts().to_dict() == {"done": 8, "failed": 1, "incomplete": 1}
    done = runs[runs.status == "done"]
    assert set(done.label) == {"none", "sar"} and set(done.dataset) == {
        "synthetic@4",
        "synthetic@10",
    }
    assert (
        done["nc1"].notna().all() and done["centroid_distance.few"].notna().sum() == 4
    )  # SAR keeps centroids
    assert (runs.selection == "last").all()


def test_report_matches_the_golden_tables(tmp_path):
    write_report(FIXTURES / "runs", tmp_path, figures=False)
    assert (tmp_path / "main_table.md").read_text() == (
        FIXTURES / "golden_main_table.md"
    ).read_text()
    assert (tmp_path / "separability_table.md").read_text() == (
        FIXTURES / "golden_separability_table.md"
    ).read_text()
    report = (tmp_path / "report.md").read_text()
    assert (
        "## Incomplete or failed runs" in report
        and "failed: NonFiniteLoss" in report
        and "incomplete" in report
    )
    latex = (tmp_path / "main_table.tex").read_text()
    assert (
        r"\toprule" in latex
        and r"\midrule" in latex
        and r"\bottomrule" in latex
        and r"\textbf{" in latex
    )
    assert r"$\pm$" in latex and r"\multicolumn{4}{c}{synthetic@4}" in latex
    # A negative number has a real minus sign: U+2212 in Markdown, $-$ in LaTeX, never a hyphen.
    separability = (tmp_path / "separability_table.md").read_text()
    assert "−0.032 ± 0.010" in separability and "-0.0" not in separability
    assert r"\textbf{$-$0.032 $\pm$ 0.010}" in (tmp_path / "separability_table.tex").read_text()
    table = pd.read_csv(tmp_path / "main_table.csv")
    assert (
        {"method", "group", "metric", "mean", "std", "seeds", "warnings"} < set(table.columns)
        and {"method.name", "optim.lr", "model.name", "data.sampler"} < set(table.columns)
        and (table.seeds == 2).all()
    )


def test_main_table_cells_are_mean_and_sample_std_over_seeds(tmp_path):
    runs = collect(FIXTURES / "runs")
    sar = runs[(runs.label == "sar") & (runs.dataset == "synthetic@10") & (runs.status == "done")]
    mean, std = sar.top1.mean() * 100, sar.top1.std(ddof=1) * 100
    write_report(FIXTURES / "runs", tmp_path, figures=False)
    line = next(
        li for li in (tmp_path / "main_table.md").read_text().splitlines() if li.startswith("| sar")
    )
    assert f"{mean:.1f} ± {std:.1f}" in line


def test_figures_are_real_pngs_and_pdfs(tmp_path):
    written = write_report(FIXTURES / "runs", tmp_path, tsne=True)["written"]
    stems = [
        "per_class_accuracy",
        "accuracy_vs_ratio",
        "training_curves",
        "class_mean_cosine",
        "tsne",
        "separability_by_group",
    ]
    for stem in stems:
        assert f"{stem}.png" in written and (tmp_path / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
        with Image.open(tmp_path / f"{stem}.png") as png:
            assert (
                png.format == "PNG" and 500 <= png.size[0] <= 2500 and 250 <= png.size[1] <= 1500
            ), (stem, png.size)


def test_report_cli_and_an_empty_runs_directory(tmp_path, capsys):
    assert (
        main(["report", str(FIXTURES / "runs"), "--out", str(tmp_path / "out"), "--no-figures"])
        == 0
    )
    out = capsys.readouterr().out
    assert "10 runs (8 done" in out and "| sar |" in out and "failed: synthetic_none_" in out
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    assert "no runs under" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "o3")]) == 2


@pytest.mark.parametrize(
    "name", ["main_table", "separability_table", "ratio_table", "centroid_table"]
)
def test_every_table_has_every_format(tmp_path, name):
    write_report(FIXTURES / "runs", tmp_path, figures=False)
    for suffix in ("md", "tex", "csv"):
        assert (tmp_path / f"{name}.{suffix}").stat().st_size > 100


def test_centroid_table_averages_each_runs_group_distance(tmp_path):
    """The centroid-bias table against the runs' own separability.json files."""
    write_report(FIXTURES / "runs", tmp_path, figures=False)
    table = pd.read_csv(tmp_path / "centroid_table.csv")
    for group, header in (("many", "Many"), ("few", "Few")):
        values = {}
        for path in (FIXTURES / "runs").glob("synthetic_sar_*/separability.json"):
            split = json.loads((path.parent / "split.json").read_text())
            distance = json.loads(path.read_text())["groups"][group]["centroid_distance"]
            values.setdefault(f"synthetic@{split['ratio']:g}", []).append(distance)
        assert values
        for dataset, distances in values.items():
            cell = table[
                (table.method == "sar") & (table.group == dataset) & (table.metric == header)
            ]
            assert cell["mean"].iloc[0] == pytest.approx(sum(distances) / len(distances))
    none = table[table.method == "none"]
    assert none["mean"].isna().all()  # plain training pulls towards nothing
