"""Every option of the config schema, of every registered method and loss, and of the class
re-weighting has a declared type and range; a wrong-typed or out-of-range value is refused by the
CLI with exit 2, one line naming the key, and nothing on disk."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from lt_bench.cli import main
from lt_bench.config import SECTIONS
from lt_bench.errors import UserError
from lt_bench.losses import LOSSES, Reweighting
from lt_bench.methods import METHODS
from lt_bench.options import (
    Interval,
    OneOf,
    check_value,
    declared_ranges,
    declared_types,
    undeclared_numeric_options,
)
from tests.conftest import tiny

TINY = tiny("data.ratio=4", "optim.epochs=2")

# Where each option lives: (owner, config prefix, overrides that select it).
OWNERS = [(schema, prefix, []) for prefix, schema in SECTIONS.items()]
OWNERS += [(METHODS.get(n), "method.", [f"method.name={n}"]) for n in METHODS.names()]
OWNERS += [(LOSSES.get(n), "loss.", [f"loss.name={n}"]) for n in LOSSES.names()]
OWNERS += [(Reweighting, "loss.", [])]


def base_kind(kind):
    """int / float / bool / str behind Optional[...] and list[...]."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return base_kind(args[0]) if args else kind


def out_of_range(allowed) -> list:
    if isinstance(allowed, OneOf):
        return ["sometimes"]
    values = []
    if allowed.low is not None:
        values.append(allowed.low if allowed.low_open else allowed.low - 1)
    if allowed.high is not None:
        values.append(allowed.high if allowed.high_open else allowed.high + 1)
    return values


def wrong_type(kind) -> list:
    kind = base_kind(kind)
    return {int: ["abc", 2.5], float: ["abc"], bool: [2, "maybe"], str: [[1, 2]]}.get(kind, [])


def yaml_value(value, kind) -> str:
    if typing.get_origin(kind) is list or typing.get_origin(kind) is list:
        value = [value]
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def cases():
    for owner, prefix, select in OWNERS:
        types, ranges = declared_types(owner), declared_ranges(owner)
        for name, kind in types.items():
            if dataclasses.is_dataclass(owner) and typing.get_origin(kind) is dict:
                continue  # free-form sections (data.options, model.options)
            if prefix == "" and name in ("name", "out_dir"):
                continue  # paths and names: any string
            key = f"{prefix}{name}"
            wrong = [("range", v) for v in out_of_range(ranges[name])] if name in ranges else []
            wrong += [("type", v) for v in wrong_type(kind)]
            for what, value in wrong:
                label = f"{select[0].split('=')[1] if select else 'schema'}:{key}={value}:{what}"
                yield pytest.param(select, key, yaml_value(value, kind), id=label)


ALL_CASES = list(cases())


def test_the_catalogue_covers_every_owner():
    owners = {c.values[1].split(".")[0] for c in ALL_CASES}
    assert {"seed", "data", "optim", "train", "method", "loss"} <= owners
    assert len(ALL_CASES) > 60


@pytest.mark.parametrize("select, key, value", ALL_CASES)
def test_a_bad_value_is_refused_up_front(select, key, value, tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["train", "-", *TINY, f"out_dir={out}", *select, f"{key}={value}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert key in err or key.split(".")[-1] in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lr=0"], "optim.lr=0.0 is out of range; allowed: > 0"),
        (["optim.momentum=1"], "optim.momentum=1.0 is out of range; allowed: [0, 1)"),
        (
            ["optim.epochs=3", "optim.warmup_epochs=5"],
            "optim.warmup_epochs=5 is out of range; allowed: <= optim.epochs (3)",
        ),
        (
            ["method.name=sar", "method.filter_conf=1.5"],
            "method.filter_conf=1.5 is out of range; allowed: (0, 1]",
        ),
        (
            ["method.name=sar", "method.update_conf=1"],
            "method.update_conf=1 is out of range; allowed: (0, 1)",
        ),
        (
            ["method.name=sar", "method.detach_classifier=2"],
            "method.detach_classifier=2 must be true or false",
        ),
        (["method.name=etf", "method.steps=2.5"], "method.steps=2.5 must be an integer"),
        (["loss.cb_beta=1"], "loss.cb_beta=1 is out of range; allowed: [0, 1)"),
        (
            ["loss.reweight=balanced"],
            "loss.reweight=balanced is out of range; allowed: one of none, cb, drw",
        ),
        (["train.amp=bf16"], "train.amp=bf16 is out of range; allowed: one of auto, true, false"),
        (["loss.name=ldam", "loss.scale=-30"], "loss.scale=-30 is out of range; allowed: > 0"),
        (
            ["method.name=center", "method.alpha=1.5"],
            "method.alpha=1.5 is out of range; allowed: [0, 1]",
        ),
    ],
)
def test_messages_name_key_value_and_range(overrides, message, tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["train", "-", *TINY, f"out_dir={out}", *overrides])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize("owner, prefix, select", OWNERS)
def test_every_numeric_option_declares_a_range(owner, prefix, select):
    assert undeclared_numeric_options(owner) == [], f"{owner.__name__}: declare with option_ranges"


def test_intervals():
    unit = Interval(0, 1, low_open=True)
    assert 0.5 in unit and 1 in unit and 0 not in unit and float("nan") not in unit
    assert str(unit) == "(0, 1]" and str(Interval(1)) == ">= 1"
    assert str(Interval(None, 3, high_open=True)) == "< 3"
    with pytest.raises(UserError, match=r"x=\[0, 5\] is out of range; allowed: >= 1"):
        check_value("x", [0, 5], list[int], Interval(1))
    check_value("x", None, typing.Optional[int], Interval(1))  # None is allowed by Optional
    check_value("x", 3, float, Interval(0))  # an int is a number


def test_valid_options_pass(tmp_path):
    """The values every shipped config uses pass the checker (a sanity bound on strictness)."""
    from lt_bench.config import load_config
    from lt_bench.validate import validate

    for name in ("mnist_lt", "cifar10_lt", "cifar100_lt", "imagenet_lt"):
        validate(load_config(f"experiments/{name}.yaml"))
    validate(load_config("experiments/cifar10_lt.yaml", ["loss.name=ldam", "loss.reweight=drw"]))
