"""Importing the report package stays light: no torch, no matplotlib until figures are drawn."""

import subprocess
import sys


def test_importing_the_report_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys, lt_bench.report, lt_bench.report.collect, lt_bench.report.tables; "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
