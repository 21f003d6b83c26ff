"""The bad-input catalogue: each case is one line naming the problem and the fix, CLI exit code 2,
no traceback, and nothing half-written."""

import json
from pathlib import Path

import pytest

from lt_bench.cli import main
from lt_bench.data.splits import write_list_file
from tests.conftest import tiny, write_fake_cifar, write_jpeg_tree

TINY = tiny("data.ratio=4", "optim.epochs=1")


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def image_list_root(tmp_path: Path, lines: list[tuple[str, int]] | None = None) -> Path:
    root = tmp_path / "ImageNet_LT"
    samples = write_jpeg_tree(root, [4, 2], "train")
    write_list_file(root / "ImageNet_LT_train.txt", lines if lines is not None else samples)
    write_list_file(root / "ImageNet_LT_val.txt", samples[:2])
    write_list_file(root / "ImageNet_LT_test.txt", samples[:2])
    return root


def train_args(tmp_path, *extra):
    return ["train", "-", *TINY, f"out_dir={tmp_path / 'runs'}", *extra]


def other_data_args(tmp_path, *extra):
    """The tiny run on another data set: without the synthetic set's data.options (an override
    merges into a mapping, it cannot empty it)."""
    base = [arg for arg in TINY if not arg.startswith("data.options=")]
    return ["train", "-", *base, f"out_dir={tmp_path / 'runs'}", *extra]


CASES = {
    "unknown config key": (
        ["optim.lrr=0.1"],
        "unknown config key 'optim.lrr'; did you mean optim.lr?",
    ),
    "wrong value type": (["optim.epochs=ten"], "bad value for config key 'optim.epochs'"),
    "ratio below 1": (["data.ratio=0.5"], "data.ratio=0.5 is out of range; allowed: >= 1"),
    "unknown profile": (
        ["data.profile=linear"],
        "data.profile=linear is out of range; allowed: one of exp",
    ),
    "split that empties a class": (["data.ratio=1000"], "leaves class"),
    "unknown timm model": (
        ["model.name=resnet32_cifr"],
        "timm has no model 'resnet32_cifr'; did you mean resnet32_cifar",
    ),
    "unknown method": (["method.name=sarr"], "unknown method 'sarr'; did you mean sar"),
    "unknown method option": (
        ["method.name=sar", "method.trade_of=1"],
        "method sar has no option 'trade_of'",
    ),
    "unknown data set": (["data.name=cifar1O"], "unknown data set 'cifar1O'"),
    "max count above the data": (["data.max_count=50"], "lower --max-count"),
    "unknown sampler": (["data.sampler=balanced"], "data.sampler=balanced is out of range"),
    "override without =": (["method"], "is not key=value"),
}


@pytest.mark.parametrize("case", CASES)
def test_config_and_split_errors(case, tmp_path, capsys):
    extra, message = CASES[case]
    code, err = run(capsys, *train_args(tmp_path, *extra))
    assert_one_line(code, err, message)
    assert not (tmp_path / "runs").exists()


def test_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: [0.1\n")
    assert_one_line(*run(capsys, "train", str(bad)), "is not valid YAML at line")


def test_missing_data_root(tmp_path, capsys):
    code, err = run(
        capsys,
        *other_data_args(tmp_path, "data.name=cifar10", f"data.root={tmp_path / 'nowhere'}"),
    )
    assert_one_line(code, err, "cifar10 not found: expected")
    assert not (tmp_path / "runs").exists()


def test_corrupted_cifar_batch(tmp_path, capsys):
    root = write_fake_cifar(tmp_path / "data")
    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"\x80garbage")
    code, err = run(
        capsys, *other_data_args(tmp_path, "data.name=cifar10", f"data.root={root}")
    )
    assert_one_line(code, err, "are corrupted")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda s: [*s, ("train/class000/missing.jpg", 0)],
            "images in ImageNet_LT_train.txt are missing",
        ),
        (lambda s: [*s[:-1], (s[-1][0], 7)], "label 7 is out of range 0..1"),
        (lambda s: [*s, s[0]], "duplicate entry"),
    ],
)
def test_bad_list_files(tmp_path, capsys, edit, message):
    root = image_list_root(tmp_path)
    samples = [
        tuple(line.rsplit(" ", 1))
        for line in (root / "ImageNet_LT_train.txt").read_text().splitlines()
    ]
    write_list_file(root / "ImageNet_LT_train.txt", edit([(p, int(label)) for p, label in samples]))
    code, err = run(
        capsys,
        *other_data_args(
            tmp_path,
            "data.name=imagenet_lt",
            f"data.root={root}",
            "data.options={num_classes: 2, image_size: 16}",
            "data.num_workers=0",
        ),
    )
    assert_one_line(code, err, message)


def test_num_classes_disagreeing_with_the_data(tmp_path, capsys):
    root = image_list_root(tmp_path)
    code, err = run(
        capsys,
        *other_data_args(
            tmp_path,
            "data.name=imagenet_lt",
            f"data.root={root}",
            "data.options={num_classes: 5, image_size: 16}",
        ),
    )
    assert_one_line(code, err, "no image for 3 of 5 classes")


def test_resuming_with_another_config(tmp_path, capsys):
    assert main(train_args(tmp_path, "name=run")) == 0
    capsys.readouterr()  # the first run's output (its warnings) is not under test
    (tmp_path / "runs" / "run" / "final.json").write_text(json.dumps({"status": "running"}))
    code, err = run(capsys, *train_args(tmp_path, "name=run", "optim.lr=0.5"), "--resume")
    assert_one_line(code, err, "config differs (optim.lr: 0.1 -> 0.5)")


def test_non_finite_loss(tmp_path, capsys):
    code, err = run(
        capsys, *train_args(tmp_path, "optim.lr=1e38", "optim.warmup_epochs=0", "name=nan")
    )
    assert_one_line(code, err, "became non-finite at epoch 1")
    final = json.loads((tmp_path / "runs" / "nan" / "final.json").read_text())
    assert final["status"] == "failed"  # a complete record of the failure, not a half-written run


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = run(capsys, "train", "-", *TINY, f"out_dir={blocker / 'runs'}")
    assert_one_line(code, err, "is not a writable folder")


def test_empty_runs_directory_for_the_report(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert_one_line(
        *run(capsys, "report", str(tmp_path / "empty"), "--out", str(tmp_path / "out")),
        "no runs under",
    )
    assert not (tmp_path / "out").exists()


def test_checkpoints_load_with_weights_only(tmp_path):
    import torch

    assert main(train_args(tmp_path, "name=ok")) == 0
    state = torch.load(tmp_path / "runs" / "ok" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_an_unreadable_image_fails_the_run_with_one_line(tmp_path, capsys, workers):
    """A data problem found after the run folder exists: exit 2, one line naming the file (also
    from a DataLoader worker), and the run ends failed with error.log, never running."""
    from tests.conftest import write_jpeg_tree

    root = tmp_path / "imgs"
    write_jpeg_tree(root, [12, 12], "train")
    for jpg in (root / "train" / "class001").glob("*.jpg"):
        jpg.write_bytes(b"not a jpeg")
    args = other_data_args(
        tmp_path,
        "data.name=imagefolder",
        f"data.root={root / 'train'}",
        f"data.options={{val_root: {root / 'train'}, image_size: 8}}",
        "data.ratio=2",
        f"data.num_workers={workers}",
        "name=run",
    )
    code, err = run(capsys, *args)
    assert_one_line(code, err, "cannot read image")
    final = json.loads((tmp_path / "runs" / "run" / "final.json").read_text())
    assert final["status"] == "failed" and final["error"].startswith("cannot read image")
    assert (tmp_path / "runs" / "run" / "error.log").exists()
