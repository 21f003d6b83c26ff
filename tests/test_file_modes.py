"""Files lt-bench writes get 0666 less the umask, folders 0777 less it (not mkstemp's 0600)."""

import os
import stat

import pytest

from lt_bench import atomic
from lt_bench.config import load_config
from lt_bench.engine import train
from tests.conftest import tiny


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert atomic.current_umask() == umask
    assert atomic.current_umask() == umask


def test_atomic_writes_follow_the_umask(tmp_path, umask):
    atomic.write_text(tmp_path / "a.txt", "a\n")
    atomic.write_json(tmp_path / "new" / "b.json", {"b": 1})
    with atomic.atomic_path(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"c")
    expected = {0o022: 0o644, 0o077: 0o600}[umask]
    assert [mode(tmp_path / name) for name in ("a.txt", "new/b.json", "c.bin")] == [expected] * 3
    assert mode(tmp_path / "new") == {0o022: 0o755, 0o077: 0o700}[umask]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "c.bin", "new"]  # no temp left


def test_a_training_run_folder_follows_the_umask(tmp_path, umask):
    cfg = load_config(
        None, [*tiny("data.ratio=4", "optim.epochs=1", train=12, test=2), f"out_dir={tmp_path}"]
    )
    train(cfg)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    folders = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert len(files) >= 8 and folders  # config, split, metrics, final, checkpoint, ...
    expected = {0o022: 0o644, 0o077: 0o600}[umask]
    assert {p.name: mode(p) for p in files} == {p.name: expected for p in files}
    assert {mode(p) for p in folders} == {0o777 & ~umask}
