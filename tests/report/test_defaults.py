"""The report reads the options' defaults from source, without importing torch; what it reads is
exactly what the registries declare (lt_bench.options.declared_defaults, which imports them)."""

import subprocess
import sys
from pathlib import Path

from lt_bench import config
from lt_bench import source_defaults as defaults

FIXTURE_RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def test_collecting_the_fixture_runs_imports_no_torch():
    code = (
        "import sys; from lt_bench.report.collect import collect; "
        f"runs = collect({str(FIXTURE_RUNS)!r}); "
        "print(len(runs), sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "10 []"


def test_the_source_reader_returns_every_registered_default():
    from lt_bench.losses import LOSSES, Reweighting
    from lt_bench.methods import METHODS
    from lt_bench.options import declared_defaults
    from lt_bench.stages import stage_names, stage_options

    assert defaults.method_defaults() == {
        name: declared_defaults(METHODS.get(name)) for name in METHODS.names()
    }
    assert defaults.loss_defaults() == {
        name: declared_defaults(LOSSES.get(name)) for name in LOSSES.names()
    }
    assert defaults.reweighting_defaults() == declared_defaults(Reweighting)
    assert defaults.stage_defaults() == {
        name: declared_defaults(stage_options(name)) for name in stage_names()
    }
    # Spot checks that the comparison is not vacuous: inherited __init__, inherited dataclass
    # fields, a constant imported from another module, a default_factory.
    assert defaults.method_defaults()["none"] == {}
    assert defaults.method_defaults()["sar"]["trade_off"] == 0.1
    assert defaults.stage_defaults()["crt"]["epochs"] == 10
    assert defaults.stage_defaults()["lws"]["samples_per_class"] == 4
    assert defaults.stage_defaults()["tau_norm"]["taus"][:3] == [0.0, 0.1, 0.2]


def test_run_defaults_are_the_schemas_plus_the_runs_options():
    values = config.run_defaults("sar", "ldam", "crt")
    assert values["method.trade_off"] == 0.1 and values["loss.max_margin"] == 0.5
    assert values["loss.reweight"] == "none" and values["stage.lr"] == 0.2
    assert values["optim.lr"] == 0.1  # the schema's own default
    unknown = config.run_defaults("a_removed_method", "ce", None)
    assert not any(key.startswith("method.") and key != "method.name" for key in unknown)
