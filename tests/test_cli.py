import json

import pytest
from PIL import Image

from lt_bench.cli import main
from lt_bench.data.splits import indices_sha256, long_tail_counts


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_split_on_fake_cifar_writes_manifest_list_and_plot(capsys, tmp_path, fake_cifar10):
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(
        capsys,
        "split",
        "cifar10",
        "--ratio",
        "10",
        "--seed",
        "2",
        "--root",
        str(fake_cifar10),
        "--val-per-class",
        "2",
        "--out",
        str(out_dir),
    )
    assert code == 0
    manifest = json.loads((out_dir / "split.json").read_text())
    assert manifest["dataset"] == "cifar10" and manifest["ratio"] == 10 and manifest["seed"] == 2
    assert long_tail_counts(10, 30, 10) == [30, 23, 17, 13, 10, 8, 6, 5, 3, 3]
    # The head (all 30 images in the split) gives its 2 validation images out of its training set.
    assert manifest["counts"] == [28, 23, 17, 13, 10, 8, 6, 5, 3, 3] and manifest["total"] == 116
    assert manifest["validation"]["counts"] == [2] * 10 and manifest["subset"] == "ldam"
    assert manifest["validation"]["taken_from_split"] == [2] + [0] * 9
    lines = (out_dir / "train.txt").read_text().splitlines()
    assert len(lines) == 116
    indices = sorted(int(line.split()[0].split("/")[1]) for line in lines)
    assert manifest["sha256"] == indices_sha256(indices)
    with Image.open(out_dir / "class_distribution.png") as png:
        assert png.format == "PNG" and png.size[0] > 300 and png.size[1] > 200
    assert "116 training images in 10 classes" in out
    assert "groups (absolute): many 0, medium 2, few 8" in out


def test_split_counts_need_no_cifar_on_disk(capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(
        capsys,
        "split",
        "cifar100",
        "--ratio",
        "100",
        "--root",
        str(tmp_path / "none"),
        "--out",
        str(out_dir),
    )
    assert code == 0
    manifest = json.loads((out_dir / "split.json").read_text())
    assert (
        manifest["total"] == 10847
        and manifest["sha256"] is None
        and "counts only" in manifest["note"]
    )
    assert {k: len(v) for k, v in manifest["groups"].items()} == {
        "many": 35,
        "medium": 35,
        "few": 30,
    }
    assert not (out_dir / "train.txt").exists() and (out_dir / "class_distribution.png").is_file()
    assert "10847 training images in 100 classes (max 500, min 5" in out


def test_split_of_a_class_subset_without_its_class_count_is_refused(
    capsys, tmp_path, fake_imagenet_lt
):
    out_dir = tmp_path / "out"
    # The fake list holds 4 of ImageNet-LT's 1,000 classes: 996 empty classes are refused, not reported.
    code, _, err = run_cli(
        capsys, "split", "imagenet_lt", "--root", str(fake_imagenet_lt), "--out", str(out_dir)
    )
    assert code == 2 and "num_classes" in err and not (out_dir / "split.json").exists()


def test_split_embedded_mnist_default_out(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, _ = run_cli(capsys, "split", "mnist_lt", "--ratio", "100")
    assert code == 0
    out_dir = tmp_path / "splits" / "mnist_lt_exp_r100_s0"
    manifest = json.loads((out_dir / "split.json").read_text())
    # 400 -> 4 images (988), less the head's 20 validation images (it is used whole by the split).
    assert sum(long_tail_counts(10, 400, 100)) == 988 and manifest["total"] == 968
    # Same seed, same split; another seed, another subset of the same sizes.
    assert run_cli(capsys, "split", "mnist_lt", "--ratio", "100", "--out", "again")[0] == 0
    assert (
        run_cli(capsys, "split", "mnist_lt", "--ratio", "100", "--seed", "1", "--out", "other")[0]
        == 0
    )
    again, other = (
        json.loads((tmp_path / d / "split.json").read_text()) for d in ("again", "other")
    )
    assert (
        again["sha256"] == manifest["sha256"] != other["sha256"]
        and other["counts"] == manifest["counts"]
    )


def test_datasets_lists_presence_and_sizes(capsys):
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "yes" in rows["mnist_lt"] and "train 4,000, test 1,000" in rows["mnist_lt"]
    assert rows["cifar10"].split()[1] == "no"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["split", "cifar10", "--ratio", "0.5"], "ratio must be >= 1"),
        (["split", "cifar10", "--profile", "linear"], "unknown long-tail profile 'linear'"),
        (["split", "cifar1O"], "unknown data set 'cifar1O'; did you mean cifar10"),
        (["split", "cifar10", "--ratio", "ten"], "invalid float value"),
        (["split", "cifar10", "--ratio", "10000"], "leaves class"),
        (["split", "mnist_lt", "--max-count", "450"], "lower --max-count to at most 400"),
        (["split", "imagenet_lt", "--root", "MISSING"], "does not exist; pass the folder"),
        (["split", "imagefolder", "--root", "MISSING"], "is not a folder"),
        (
            ["split", "cifar10", "--root", "MISSING", "--download", "--ratio", "0"],
            "ratio must be >= 1",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, argv, message):
    argv = [str(tmp_path / a) if a == "MISSING" else a for a in argv]
    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, *argv, "--out", str(out_dir))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out_dir.exists()


def test_unwritable_output(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "split", "cifar10", "--out", str(blocker / "sub"))
    assert code == 2 and "pass a writable --out" in err
