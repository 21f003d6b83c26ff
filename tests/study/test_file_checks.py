"""Every malformed study file is one line on stderr, exit 2 through the CLI, nothing written:
sections of the wrong type, keys that are no config keys, values out of range, a key set in two
places where one would silently win, unbounded or malformed tuning, bad slurm and stage lists."""

import pytest

from lt_bench.cli import main
from tests.test_sweep import BASE

SPACE = "space: {optim.lr: {log_uniform: [0.01, 0.2]}}"
CASES = {
    # sections of the wrong type, keys that are not strings
    "fixed: [optim.epochs]": "fixed must be a mapping",
    "grid: [seed]": "grid must be a mapping",
    "grid: {seed: 0}": "study grid key 'seed' needs a non-empty list of values",
    "grid: {seed: []}": "study grid key 'seed' needs a non-empty list of values",
    "grid: {1: [0, 1]}": "grid has key 1; keys are config keys",
    "arms: [{method.name: sar}, 3]": "arms must be a list of mappings",
    "arms: {method.name: sar}": "arms must be a list of mappings",
    "name: [a, b]": "name must be a string",
    "1: 2": "has unknown keys ['1']",
    "stages: crt": "stages must be a list of stage names",
    "stages: {crt: 1}": "stages must be a list of stage names",
    "stages: [crt2]": "lists unknown stage 'crt2'",
    # keys that are no config keys, values the schema refuses: checked on one point of each arm
    "fixed: {optim.lrr: 0.1}": "unknown config key 'optim.lrr'; did you mean optim.lr?",
    "arms: [{method.name: sar}, {optim.epoch: 2}]": "unknown config key 'optim.epoch'",
    "fixed: {optim.epochs: 0}": "optim.epochs=0 is out of range; allowed: >= 1",
    "grid: {seed: [0, -1]}": "seed=-1 is out of range",
    "tune: {trials: 2, space: {optim.epochs: {int_uniform: [1, 0]}}}": "with low <= high",
    "tune: {trials: 2, space: {optim.momentum: {choice: [0.9, fast]}}}": (
        "bad value for config key 'optim.momentum'"
    ),
    "fixed: {optim.epochs: many}": "bad value for config key 'optim.epochs'",
    "base: missing.yaml": "missing.yaml does not exist",
    # one key in two places: one would silently overwrite the other
    "arms: [{method.name: sar}]\ngrid: {method.name: [none, sar]}": (
        "grid key 'method.name' is also set by arm {'method.name': 'sar'}"
    ),
    "arms: [{method: {name: sar}}]\ngrid: {method.name: [none]}": (
        "grid key 'method.name' is also set by arm"
    ),
    "fixed: {seed: 0}\ngrid: {seed: [0, 1]}": "grid key 'seed' is also fixed (seed: 0)",
    "grid: {seed: [0, 0]}": "has points with identical configs",
    # slurm
    "slurm: [gpu]": "slurm must be a mapping",
    "slurm: {partiton: gpu}": "slurm has unknown keys ['partiton']",
    "slurm: {gpus: two}": "slurm.gpus='two' must be an integer >= 1",
    "slurm: {time_min: 0}": "slurm.time_min=0 must be an integer >= 1",
    "slurm: {partition: 3}": "slurm.partition=3 must be a string",
    # tuning
    "tune: [1]": "tune must be a mapping with trials and space",
    f"tune: {{trials: 1000000000, {SPACE}}}": "tune.trials=1000000000 must be an integer from 1 to 1000",
    f"tune: {{trials: true, {SPACE}}}": "tune.trials=True must be an integer",
    f"tune: {{trials: 2, seed: abc, {SPACE}}}": "tune.seed='abc' must be an integer >= 0",
    "tune: {trials: 2, space: [optim.lr]}": "tune.space must be a mapping",
    "tune: {trials: 2, space: {optim.lr: {log_uniform: [0.01, 0.2, 0.3]}}}": (
        "tune space 'optim.lr': log_uniform needs [low, high], two numbers"
    ),
    "tune: {trials: 2, space: {optim.lr: {log_uniform: [1e-5, 1e-3]}}}": (
        "YAML reads 1e-5 as a string: write 1.0e-5"
    ),
    "tune: {trials: 2, space: {optim.lr: {uniform: {low: 0, high: 1}}}}": (
        "uniform needs [low, high]"
    ),
    "tune: {trials: 2, space: {optim.lr: {uniform: [0.2, 0.1]}}}": "with low <= high",
    "tune: {trials: 2, space: {optim.epochs: {int_uniform: [1.5, 3]}}}": (
        "int_uniform needs [low, high], two integers"
    ),
    "tune: {trials: 2, space: {optim.lr: {log_uniform: [0.1, 0.2], uniform: [0, 1]}}}": (
        "tune space 'optim.lr' must be one of log_uniform"
    ),
    "tune: {trials: 2, space: {optim.lr: {choice: []}}}": "choice needs a non-empty list",
    "tune: {trials: 2, space: {optim.lrr: {uniform: [0.01, 0.1]}}}": (
        "unknown config key 'optim.lrr'"
    ),
    "tune: {trials: 2, space_by_method: {sar: [x]}}": "tune.space_by_method.sar must be a mapping",
    "tune: {trials: 2, space_by_method: {sra: {method.trade_off: {uniform: [0, 1]}}}}": (
        "tune.space_by_method names method 'sra', which no arm uses (the arms' methods: none)"
    ),
    "tune: {trials: 2, at: [1]}": "tune.at must be a mapping",
    f"tune: {{trials: 2, spaces: {{}}, {SPACE}}}": "tune has unknown keys ['spaces']",
    f"grid: {{optim.lr: [0.1, 0.2]}}\ntune: {{trials: 2, {SPACE}}}": (
        "tune space key 'optim.lr' is also a grid key (optim.lr), so it would never be searched"
    ),
    f"tune: {{trials: 2, at: {{optim.lr: 0.1}}, {SPACE}}}": (
        "tune space key 'optim.lr' is also fixed by tune.at"
    ),
}


@pytest.mark.parametrize("text, message", list(CASES.items()), ids=list(CASES))
def test_a_malformed_study_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, message):
    (tmp_path / "base.yaml").write_text(BASE)
    if not text.startswith("base:"):
        text = "base: base.yaml\n" + text
    if "grid:" not in text and "arms:" not in text:
        text += "\ngrid: {seed: [0]}"
    (tmp_path / "study.yaml").write_text(text + "\n")
    runs = tmp_path / "runs"
    assert main(["sweep", str(tmp_path / "study.yaml"), "--runs-dir", str(runs)]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("lt-bench sweep: error: ")
    assert out == "" and not runs.exists()
