"""Every .tex table of a report compiles in a minimal document (article + booktabs): display names
with LaTeX's special characters, Greek letters, minus signs, daggers and captions included.
Skipped, saying why, where no pdflatex is installed."""

import shutil
import subprocess

import pytest

from lt_bench.report import write_report
from tests.report.test_labels import name_rows, tuned_study
from tests.report.test_notes import warned_runs

PDFLATEX = shutil.which("pdflatex")
needs_latex = pytest.mark.skipif(
    PDFLATEX is None,
    reason="pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)",
)
DOCUMENT = r"""\documentclass{article}
\usepackage{booktabs}
\begin{document}
%s
\end{document}
"""


def compile_tables(out, tmp_path) -> list[str]:
    """The report's .tex files, each \\input in one document; pdflatex's exit status checked."""
    tables = sorted(path.name for path in out.glob("*.tex"))
    body = "\n\\bigskip\n\n".join(f"\\input{{{out / name}}}" for name in tables)
    (tmp_path / "tables.tex").write_text(DOCUMENT % body)
    result = subprocess.run(
        [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "tables.pdf").read_bytes()[:4] == b"%PDF"
    return tables


@needs_latex
def test_the_fixture_reports_tables_compile(fixture_runs, tmp_path):
    write_report(fixture_runs, tmp_path / "out", figures=False)
    tables = compile_tables(tmp_path / "out", tmp_path)
    assert {"main_table.tex", "separability_table.tex", "comparison_table.tex"} <= set(tables)
    assert "$-$0.032" in (tmp_path / "out" / "separability_table.tex").read_text()


@needs_latex
def test_named_rows_columns_and_warnings_compile(tmp_path):
    runs = tmp_path / "runs"
    folders = tuned_study(runs)
    warned_runs(runs)
    name_rows(runs, folders, {"no_pull": "SAR (no pull) & BS_1 #2 {50%}"},
              {"mnist_lt@100": "MNIST-LT ρ=100 ~ ^ $ \\"})  # fmt: skip
    write_report(runs, tmp_path / "out", figures=False)
    tables = compile_tables(tmp_path / "out", tmp_path)
    assert "settings.tex" in tables
    main = (tmp_path / "out" / "main_table.tex").read_text()
    assert r"SAR (no pull) \& BS\_1 \#2 \{50\%\}" in main and r"$^\dagger$" in main
