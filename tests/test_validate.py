"""The one validator: every string option a declared choice, data.options and model.options checked
against the constructor they go to, over every registered data set; exit 2, one line, nothing written."""

from __future__ import annotations

import typing

import pytest

from lt_bench.cli import main
from lt_bench.config import SECTIONS, load_config
from lt_bench.data import DATASETS
from lt_bench.errors import UserError
from lt_bench.options import OneOf, declared_ranges, declared_types
from lt_bench.validate import validate
from tests.conftest import tiny

# String fields that are free text or names checked elsewhere (a registry, a device pattern, a path).
FREE_TEXT = {
    "out_dir",
    "name",
    "label",
    "imports",
    "data.name",
    "data.root",
    "data.split_file",
    "model.name",
    "model.weights",
    "train.device",
    "train.experiment",
}


def string_fields():
    for prefix, schema in SECTIONS.items():
        ranges = declared_ranges(schema)
        for name, kind in declared_types(schema).items():
            texts = kind in (str, typing.Optional[str], list[str])
            if texts and f"{prefix}{name}" not in FREE_TEXT:
                yield prefix, name, ranges.get(name)


def test_every_string_option_is_a_declared_choice():
    fields = list(string_fields())
    assert (
        len(fields) >= 8
    )  # profile, grouping, sampler, augment, classifier, schedule, select, loggers
    for prefix, name, allowed in fields:
        assert isinstance(allowed, OneOf), f"{prefix}{name} has no one_of(...) declaration"


@pytest.mark.parametrize("prefix,name,allowed", list(string_fields()))
def test_an_undeclared_choice_is_refused(tmp_path, prefix, name, allowed):
    listed = typing.get_origin(declared_types(SECTIONS[prefix])[name]) is list
    value, shown = ("[bogus]", r"\['bogus'\]") if listed else ("bogus", "bogus")
    cfg = load_config(None, [*tiny(), f"out_dir={tmp_path / 'runs'}", f"{prefix}{name}={value}"])
    with pytest.raises(
        UserError, match=rf"{prefix}{name}={shown} is out of range; allowed: one of"
    ):
        validate(cfg)


@pytest.mark.parametrize("dataset", DATASETS.names())
def test_a_data_option_typo_is_refused_for_every_data_set(tmp_path, capsys, dataset):
    """Each registered data set: an option its constructor does not take is refused, with the
    closest one it does take when there is one; exit 2, one line, nothing on disk."""
    takes = list(declared_types(DATASETS.get(dataset)))
    typo = (takes[0][:-1] + takes[0][-1] * 2) if takes else "num_clases"
    out = tmp_path / "runs"
    code = main(
        ["train", "-", f"data.name={dataset}", f"data.options={{{typo}: 1}}", f"out_dir={out}"]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"data set {dataset} has no option '{typo}'" in err
    assert (f"did you mean {takes[0]}?" in err) if takes else "it takes: nothing" in err
    assert not out.exists()


def test_the_reported_silent_typo_is_refused(tmp_path, capsys):
    """The case the issue measured: mnist_lt with data.options={num_clases: 5} trained 10 classes."""
    code = main(
        ["train", "-", "data.name=synthetic", "data.options={num_clases: 5}", f"out_dir={tmp_path}"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "has no option 'num_clases'; did you mean num_classes?" in err


def test_model_options_are_checked_against_the_model(tmp_path, capsys):
    ok = load_config(None, [*tiny(), "model.options={norm: none}", f"out_dir={tmp_path}"])
    validate(ok)  # small_cnn takes norm
    code = main(["train", "-", *tiny(), "model.options={nrom: none}", f"out_dir={tmp_path / 'r'}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "model small_cnn has no option 'nrom' (model.options); did you mean norm?" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value", [".inf", "nan"])
def test_a_non_finite_ratio_is_refused_by_its_declared_range(tmp_path, value):
    cfg = load_config(None, [*tiny(), f"data.ratio={value}", f"out_dir={tmp_path}"])
    with pytest.raises(UserError, match="data.ratio=.* is out of range; allowed: >= 1"):
        validate(cfg)


def test_cross_key_rules(tmp_path):
    with pytest.raises(UserError, match="disagrees with loss.scale=30"):
        validate(load_config(None, [*tiny(), "loss.name=ldam", "model.cosine_scale=10"]))
    validate(load_config(None, [*tiny(), "loss.name=ldam", "model.cosine_scale=30"]))
    with pytest.raises(UserError, match="optim.warmup_epochs=3 is out of range"):
        validate(load_config(None, [*tiny(), "optim.epochs=2", "optim.warmup_epochs=3"]))


def test_a_model_that_does_not_fit_the_image_size_is_refused(tmp_path, capsys):
    """test_vit cuts images into 16x16 patches; the tiny data set's 8x8 images fit none: exit 2
    with one line naming the option that fixes it, before anything is written."""
    out = tmp_path / "runs"
    code = main(["train", "-", *tiny("model.name=test_vit"), f"out_dir={out}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "model test_vit expects sides that are multiples of its 16x16 patches" in err
    assert "synthetic gives 8x8: set model.options.img_size=8 and model.options.patch_size=2" in err
    assert not out.exists()
    fixed = "model.options={img_size: 8, patch_size: 2}"
    validate(load_config(None, [*tiny("model.name=test_vit", fixed), f"out_dir={out}"]))
    validate(load_config(None, [*tiny("model.name=small_cnn"), f"out_dir={out}"]))  # any size
    validate(load_config(None, [*tiny("model.name=resnet18"), f"out_dir={out}"]))
    with pytest.raises(UserError, match="model vit_tiny_patch16_224 expects 224x224 inputs, "):
        validate(load_config(None, [*tiny("model.name=vit_tiny_patch16_224"), f"out_dir={out}"]))
