"""run_study: the phases of a study, what runs in each, and that without a launcher nothing runs."""

from lt_bench.study import load_study, run_study
from tests.test_sweep import BASE
from tests.test_tune import STUDY as TUNED


def _write(tmp_path, text):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "study.yaml").write_text(text)
    return load_study(tmp_path / "study.yaml")


def test_an_untuned_study_is_one_phase_and_the_launcher_gets_its_points(tmp_path):
    study = _write(tmp_path, "base: base.yaml\ngrid:\n  seed: [0, 1, 2]\n")
    (phase,) = run_study(study, tmp_path / "runs")
    assert phase.name == "" and len(phase.points) == 3 and phase.where == tmp_path / "runs"
    assert phase.results == [] and not (tmp_path / "runs").exists()
    given = []
    (phase,) = run_study(
        study, tmp_path / "runs", launcher=lambda points: given.append(points) or []
    )
    assert given == [phase.points]


def test_a_tuned_study_waits_for_its_trials_before_the_finals(tmp_path):
    study = _write(tmp_path, TUNED)
    (tuning,) = run_study(study, tmp_path / "runs")
    assert tuning.name == "tuning" and tuning.where == tmp_path / "runs" / "tune"
    assert len(tuning.points) == 4 and tuning.waiting == "0 of 4 done"
    assert not (tmp_path / "runs").exists()  # a status pass writes nothing

    launched = []
    phases = run_study(study, tmp_path / "runs", launcher=lambda p: launched.append(p) or [])
    assert [p.name for p in phases] == ["tuning"] and launched == [tuning.points]
    assert (tmp_path / "runs" / "tune" / "tuning.json").is_file()  # the record, trials unscored
    assert phases[0].submitted == []
