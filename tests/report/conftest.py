import shutil
from pathlib import Path

import pytest

from lt_bench import atomic

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# A tuned study's record (as lt_bench.study.tune.write_record writes it), small enough to check.
TUNING_RECORD = {
    "study": "tiny",
    "trials_per_arm": 2,
    "seed": 0,
    "space": {"optim.lr": {"log_uniform": [0.01, 0.5]}},
    "space_by_method": {"sar": {"method.trade_off": {"choice": [0.0, 0.1]}}},
    "at": {"data.ratio": 10},
    "selected_on": "validation balanced accuracy (never the test set)",
    "arms": [
        {
            "arm": "method.name=none",
            "budget_epochs": 4,
            "chosen": {"trial": 1, "values": {"optim.lr": 0.2}, "run_id": "b", "val_balanced": 0.5},
            "trials": [
                {"trial": 0, "values": {"optim.lr": 0.03}, "run_dir": "a", "run_id": "a", "val_balanced": 0.4},
                {"trial": 1, "values": {"optim.lr": 0.2}, "run_dir": "b", "run_id": "b", "val_balanced": 0.5},
            ],
        }
    ],
}  # fmt: skip


@pytest.fixture
def fixture_runs(tmp_path) -> Path:
    """A writable copy of the committed fixture runs plus a tuning record: every table of the
    report has something to show."""
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "runs", runs)
    atomic.write_json(runs / "tune" / "tuning.json", TUNING_RECORD)
    return runs


@pytest.fixture(scope="session")
def fourteen_arms(tmp_path_factory) -> Path:
    """A light study as large as a real one (tests/report/fixtures.py): 14 arms x 3 seeds x ratios
    10 and 100, features for two arms; made once per session, never written to."""
    from tests.report.fixtures import fabricate_study

    return fabricate_study(tmp_path_factory.mktemp("fourteen_arms") / "runs")
