"""The ``lt-bench`` command line: one argparse subcommand per job; ``main(argv)`` is callable from tests."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

from lt_bench.errors import UserError, one_line


def _output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or fail with a one-line error before anything is computed."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create output folder {path} ({err.strerror}); pass a writable --out"
        ) from err
    if not path.is_dir() or not _writable(path):
        raise UserError(f"output folder {path} is not writable; pass a writable --out")
    return path


def _percent(fraction: float) -> str:
    """An accuracy as the tables show it: ``62.4%``."""
    return f"{100 * fraction:.1f}%"


def _summary(final: dict) -> str:
    """``top-1 62.4% (many 98.0%, medium 87.1%, few 17.0%; absolute groups)`` from a final.json."""
    groups = ", ".join(
        f"{g} {_percent(final[g])}" if final.get(g) is not None else f"{g} – (empty)"
        for g in ("many", "medium", "few")
    )
    return f"top-1 {_percent(final['top1'])} ({groups}; {final.get('grouping', '?')} groups)"


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


# ----------------------------------------------------------------------------- split


def cmd_split(args: argparse.Namespace) -> int:
    from lt_bench import atomic
    from lt_bench.data import build_dataset
    from lt_bench.data.groups import check_grouping
    from lt_bench.data.splits import RATIO_TOLERANCE, check_profile, choose_shot_groups
    from lt_bench.report.plots import plot_class_distribution
    from lt_bench.report.tables.captions import empty_group_note

    check_grouping(args.grouping)  # before any data is read: "auto" names its replacement
    options = _split_data_options(args.overrides)
    source = build_dataset(args.dataset, root=args.root, download=args.download, **options)
    ratio = source.default_ratio if args.ratio is None else args.ratio
    profile = source.default_profile if args.profile is None else args.profile
    check_profile(ratio, profile)
    lines, manifest = _draw_split(source, args, ratio, profile)
    name = f"{source.info.name}_{manifest['profile'] or 'list'}_r{manifest['ratio']:g}_s{args.seed}"
    out = _output_dir(Path(args.out) if args.out else Path("splits") / name)

    groups, grouping = choose_shot_groups(manifest["counts"], args.grouping)
    atomic.write_json(out / "split.json", manifest)
    if lines:
        atomic.write_text(out / "train.txt", "".join(line + "\n" for line in lines))
    achieved = manifest.get("achieved_ratio", manifest["ratio"])
    shown_ratio = (
        f"ratio {manifest['ratio']:g}"
        if abs(achieved - manifest["ratio"]) <= RATIO_TOLERANCE * manifest["ratio"]
        else f"ratio {manifest['ratio']:g} asked, {achieved:g} drawn"
    )
    title = f"{source.info.name}, {shown_ratio}, {manifest['profile'] or 'list file'}"
    plot_class_distribution(manifest["counts"], groups, out / "class_distribution.png", title)

    counts = manifest["counts"]
    sizes = ", ".join(f"{g} {len(ids)}" for g, ids in groups.items())
    print(
        f"{source.info.name}: {manifest['total']} training images in {len(counts)} classes "
        f"(max {max(counts)}, min {min(counts)}, ratio {max(counts) / min(counts):.1f})"
    )
    print(f"groups ({grouping}): {sizes}")
    for name, ids in groups.items():
        if not len(ids):  # shown empty, never filled from another grouping
            print(f"  {name} is empty: {empty_group_note(grouping, name)}")
    if "note" in manifest:
        print(manifest["note"])
    for warning in manifest.get("warnings", []):
        print(f"warning: {warning}")
    print(f"wrote {out}/split.json{', train.txt' if lines else ''}, class_distribution.png")
    return 0


def _split_data_options(pairs: list[str]) -> dict:
    """``data.options.KEY=VALUE`` arguments (as ``train`` takes them) as the data set's options."""
    from omegaconf import OmegaConf

    prefix = "data.options."
    for pair in pairs:
        if not pair.startswith(prefix) or "=" not in pair or pair.index("=") == len(prefix):
            raise UserError(
                f"unexpected argument {pair!r}: data set options are data.options.KEY=VALUE, "
                "e.g. data.options.num_classes=4"
            )
    if not pairs:
        return {}
    return OmegaConf.to_container(OmegaConf.from_dotlist(pairs))["data"]["options"]


def _draw_split(source, args: argparse.Namespace, ratio: float, profile: str) -> tuple[list, dict]:
    """The split's train list and manifest; for CIFAR without data on disk, the counts alone."""
    from lt_bench.data import long_tail_split
    from lt_bench.data.splits import achieved_ratio, long_tail_counts, ratio_warning, split_manifest

    if (
        source.balanced
        and not source.available()
        and source.balanced_counts() is not None
        and not args.download
    ):
        max_count = args.max_count or max(source.balanced_counts())
        counts = long_tail_counts(source.info.num_classes, max_count, ratio, profile)
        achieved = achieved_ratio(counts)
        warning = ratio_warning(source.info.name, ratio, achieved, counts)
        manifest = split_manifest(
            source.info.name,
            ratio,
            profile,
            args.seed,
            counts,
            None,
            args.grouping,
            achieved_ratio=achieved,
            max_count=max_count,
            note=f"counts only: no data at {source.describe()}, so no indices were drawn",
            warnings=[warning] if warning else [],
        )
        return [], manifest
    if args.val_per_class < 0:
        raise UserError(f"--val-per-class {args.val_per_class} must be >= 0 (0: no validation)")
    split = long_tail_split(
        source,
        ratio,
        profile,
        args.seed,
        args.max_count,
        grouping=args.grouping,
        val_per_class=args.val_per_class,
        subset=args.subset,
    )
    return split.lines, split.manifest


# ----------------------------------------------------------------------------- datasets


def cmd_datasets(args: argparse.Namespace) -> int:
    from lt_bench.data import DATASETS, build_dataset

    rows = [("name", "present", "classes", "image", "sizes", "where")]
    for name in DATASETS.names():
        source = build_dataset(name)
        try:
            present = source.available()
            info = source.info
            sizes = source.split_sizes() if present else {}
            classes, image = str(info.num_classes), "x".join(map(str, info.image_size))
        except UserError:  # e.g. imagefolder without a root
            present, classes, image, sizes = False, "?", "?", {}
        size_text = ", ".join(f"{s} {n:,}" for s, n in sizes.items()) or "-"
        rows.append(
            (name, "yes" if present else "no", classes, image, size_text, source.describe())
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


# ----------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> int:
    from lt_bench.catalog import catalog, format_catalog

    print(format_catalog(args.kind, catalog(args.kind, all_models=args.all, imports=args.imports)), end="")
    return 0


# ----------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from lt_bench import distributed
    from lt_bench.config import load_config
    from lt_bench.engine import train
    from lt_bench.rundir import RunDir, run_path, source_run

    cfg = load_config(None if args.config == "-" else args.config, args.overrides)
    if args.config != "-" and cfg.imports:  # plugins beside the config file, as beside a study
        from lt_bench.plugins import add_import_folder

        add_import_folder(Path(args.config).parent)
    source = source_run(args.config, cfg)
    if source is not None:  # train RUN/config.yaml: that run (done, or resumed with --resume)
        cfg.name = source.name
    if args.print_config:
        from omegaconf import OmegaConf

        from lt_bench.config import resolved

        print(OmegaConf.to_yaml(resolved(cfg), resolve=True), end="")
        return 0
    done_before = not args.force and RunDir(run_path(cfg)).is_done()
    try:
        final = train(cfg, resume=args.resume, force=args.force)
    finally:
        distributed.shutdown()
    if not distributed.is_main_process_of_launch():
        return 0  # under torchrun only rank 0 reports
    if done_before:  # the saved result, nothing trained
        print(f"already done: {run_path(cfg)} (top-1 {_percent(final['top1'])}); --force retrains")
        return 0
    print(f"{run_path(cfg)}: {_summary(final)}")
    _print_warnings(final)
    return 0


def _print_warnings(final: dict) -> None:
    """A run's ``final.json["warnings"]``, one line each on stderr."""
    for warning in final.get("warnings") or []:
        print(f"lt-bench: warning: {warning}", file=sys.stderr)


def cmd_retrain(args: argparse.Namespace) -> int:
    from lt_bench.stages import retrain

    final = retrain(args.run_dir, args.stage, args.overrides)
    tau = f"; tau {final['tau']:g} chosen on {final['tau_selected_on']}" if "tau" in final else ""
    print(f"{final['parent']} + {final['stage']}: {_summary(final)}{tau}")
    _print_warnings(final)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lt_bench.report.show import show

    print(show(args.path, group=args.group, sort=args.sort), end="")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from lt_bench.predict import evaluate_run

    final = evaluate_run(args.run_dir, args.train_features, args.posthoc_tau)
    print(f"{args.run_dir}: {_summary(final)}; wrote separability.json, per_class.csv")
    if "posthoc" in final:
        print(
            f"post-hoc logit adjustment, tau {args.posthoc_tau:g}: top-1 {_percent(final['posthoc']['top1'])}"
        )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import shlex

    from lt_bench.study import SweepInterrupted, launch, load_study, run_study

    study = load_study(args.study, args.overrides)
    again = shlex.join([args.study, *args.overrides])  # the same points: the same overrides
    runs_dir = Path(args.runs_dir or Path("runs") / study.name)
    launching = not (args.status or args.dry_run)
    launcher, lines = None, _RunLines(study.name)
    if launching:
        given = {"partition": args.partition, "time_min": args.time_min}
        given.update(gpus=args.gpus, cpus=args.cpus)
        slurm = {**study.slurm, **{k: v for k, v in given.items() if v is not None}}
        launcher = partial(
            launch, executor=args.executor, jobs=args.jobs, slurm=slurm, on_result=lines.run
        )
    try:
        phases = run_study(study, runs_dir, launcher, args.rerun_stale, lines.phase, lines.chosen)
    except SweepInterrupted as stop:
        print(
            f"lt-bench sweep: interrupted; its workers were stopped and {len(stop.in_flight)} "
            f"runs left resumable: run lt-bench sweep {again} again to finish them",
            file=sys.stderr,
        )
        return 130
    for phase in phases:
        _print_launched(study.name, again, phase)
    failed = sum(_print_phase(study.name, phase, args.dry_run) for phase in phases)
    return 1 if failed and launching else 0


def _print_launched(name: str, study_file: str, phase) -> None:
    """What launching a phase did besides running: stale runs moved, jobs submitted, runs left to
    another process, final runs waiting."""
    if phase.moved:
        print(
            f"{name}: moved {len(phase.moved)} stale runs aside to run them again "
            f"(e.g. {phase.moved[0]})"
        )
    if phase.submitted:
        print(
            f"submitted {len(phase.submitted)} jobs ({phase.submitted[0]}...) to slurm; check with lt-bench sweep {study_file} --status"
        )
    elsewhere = [r["run_dir"] for r in phase.results if r.get("status") == "running"]
    if elsewhere:
        print(
            f"{name}: skipped {len(elsewhere)} runs that another process is training (running "
            f"elsewhere; never trained twice), e.g. {elsewhere[0]}"
        )
    if phase.waiting:
        print(f"{name}: final runs wait for the tuning trials ({phase.waiting})")


class _RunLines:
    """What ``sweep`` and ``demo`` print while a study runs: a line a finished run (its label or
    folder, seed, top-1 and few-shot accuracy, wall time; a tuning trial's number, values and
    validation score) with its warnings on the lines below; a tuned study's phase headers and each
    arm's choice. The sweep's bar says how runs go on a terminal: there only warnings are printed
    (above the bar); ``always`` prints every line on a terminal too (the demo, which has no bar)."""

    def __init__(self, study: str, always: bool = False):
        self.study, self.always, self.current = study, always, None

    def phase(self, phase) -> None:
        """A phase about to launch: a tuned study's header."""
        from lt_bench.study import status_counts

        self.current = phase
        done = status_counts(phase.points).get("done", 0)
        if phase.name == "tuning":
            arms, trials = len({trial.arm for trial in phase.trials}), len(phase.trials)
            runs = f"{trials} runs"
            if len(phase.points) < trials:
                runs = f"{trials} trials in {len(phase.points)} runs (equal draws share one)"
            epoch = "best epoch" if phase.select == "best_val" else "last epoch"
            print(
                f"{self.study} tuning: {arms} arms x {trials // max(arms, 1)} trials = {runs}, "
                f"{done} done; selecting on validation balanced accuracy ({epoch})",
                flush=True,
            )
        elif phase.name == "final":
            print(
                f"{self.study} final: {len(phase.points)} runs with each arm's chosen values, "
                f"{done} done",
                flush=True,
            )

    def run(self, done: int, total: int, result: dict) -> None:
        """A finished run (``launch``'s ``on_result``)."""
        from lt_bench.progress import run_columns, run_line, warning_lines

        phase = self.current
        name = (phase.labels if phase else {}).get(Path(result["run_dir"]))
        name = name or Path(result["run_dir"]).name
        trials = phase.trial_scores(result["run_dir"]) if phase and phase.trials else []
        columns = _trial_columns(result, trials) if trials else run_columns(result)
        self._print([run_line(done, total, name, result, columns)], warning_lines(result))

    def chosen(self, record: dict) -> None:
        """The tuning's choice: each arm's values and validation score (``tuning.json``)."""
        from lt_bench.progress import percent
        from lt_bench.study import edges

        print(f"{self.study}: chosen on validation balanced accuracy:", flush=True)
        for arm in record["arms"]:
            chosen = arm["chosen"]
            flagged = edges(chosen["values"], record, arm.get("method"))
            print(
                f"  {arm.get('label') or arm['arm']}: trial {chosen['trial']}, "
                f"{_values(chosen['values'])}, val {percent(chosen['val_balanced'])}"
                + (f" (on the edge of the space: {'; '.join(flagged)})" if flagged else ""),
                flush=True,
            )

    def _print(self, lines: list[str], warnings: list[str]) -> None:
        if self.always or not sys.stderr.isatty():
            for line in lines + warnings:
                print(line, flush=True)
            return
        from tqdm.auto import tqdm

        for line in warnings:  # never silent: above the bar, which says the rest
            tqdm.write(line)


def _trial_columns(result: dict, trials: list) -> list[str]:
    """A tuning run's columns: validation score, trial number(s) and drawn values, wall time."""
    from lt_bench.progress import duration, percent

    numbers = ", ".join(str(trial.number) for trial, _ in trials)
    columns = [f"val {percent(trials[0][1]):>6}"] if result.get("status") == "done" else []
    columns.append(f"trial{'s' if len(trials) > 1 else ''} {numbers}")
    if result.get("status") == "done":
        columns.append(f"{duration(result.get('wall_time_s')):>7}")
    return [*columns, _values(trials[0][0].values) or "no values drawn"]


def _values(values: dict) -> str:
    """Drawn values as ``optim.lr=0.0412, method.trade_off=0.31``."""
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in values.items()
    )


def _print_phase(name: str, phase, dry_run: bool) -> int:
    """A phase's status counts, its points (dry run), stale and failed runs; returns the failures."""
    from collections import Counter

    from lt_bench.rundir import status
    from lt_bench.study import POINT_STATUSES, failures, point_state

    states = [point_state(point) for point in phase.points]
    counts = Counter(state for state, _ in states)
    print(
        f"{name}{' ' + phase.name if phase.name else ''}: {len(phase.points)} runs in {phase.where}: "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in POINT_STATUSES)
    )
    done = [point.run_dir for point, (state, _) in zip(phase.points, states) if state == "done"]
    _print_other_code(name, phase, done)
    stale_runs = [(point, keys) for point, (_, keys) in zip(phase.points, states) if keys]
    if dry_run:
        for point, (state, _) in zip(phase.points, states):
            mark = state if state in ("stale", "running") else status(point.run_dir)
            print(
                f"  [{mark}] {point.run_dir.name}  "
                + " ".join(f"{k}={v}" for k, v in point.overrides.items())
            )
    for point, keys in stale_runs:
        print(f"  stale: {point.run_dir}: {'; '.join(keys)}")
    for point, (state, _) in zip(phase.points, states):
        if state == "running":
            print(f"  running elsewhere: {point.run_dir} (another process holds its lock)")
    for run_dir, error in failures(phase.points):
        print(f"  failed: {run_dir}: {error}")
    return counts.get("failed", 0)


def _print_other_code(name: str, phase, done: list[Path]) -> None:
    """One line when done runs of the phase were made by other code than the code now (their
    ``final.json["versions"]``): the study's results may then mix code versions."""
    from lt_bench.study.run import other_code

    found = other_code(done)
    if not found:
        return
    how = (
        next(iter(found))
        if len(found) == 1
        else "; ".join(f"{count}: {difference}" for difference, count in found.most_common())
    )
    print(
        f"{name}{' ' + phase.name if phase.name else ''}: {sum(found.values())} of {len(done)} done "
        f"runs were made by other code ({how}); its results may mix code versions. "
        "--rerun-stale does not rerun them (their settings are the same): move their folders "
        "aside and sweep again to rerun them"
    )


def cmd_report(args: argparse.Namespace) -> int:
    from lt_bench.report import write_report
    from lt_bench.report.collect import collect
    from lt_bench.report.compare import comparisons

    # Refuse an empty or missing runs folder, or an unknown --baseline, before creating the output folder.
    comparisons(collect(args.runs_dir), args.baseline)
    out = _output_dir(Path(args.out))
    result = write_report(
        args.runs_dir, out, figures=not args.no_figures, baseline=args.baseline, tsne=args.tsne
    )
    runs = result["runs"]
    counts = runs.status.value_counts().to_dict()
    print(
        f"{len(runs)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}); wrote {len(result['written'])} files to {out}"
    )
    if "main_table.md" in result["written"]:  # the folder holds this report only
        print((out / "main_table.md").read_text(), end="")
    for line in result["skipped"]:  # runs and figures left out, each with why
        print(line)
    return 0


DEMO_STUDY = (
    Path(__file__).resolve().parent.parent / "experiments" / "studies" / "mnist_lt_demo.yaml"
)


def cmd_demo(args: argparse.Namespace) -> int:
    """The embedded demo: the mnist_lt_demo study (10 arms x 3 seeds at ratio 100), then its report."""
    import time

    from lt_bench.report import write_report
    from lt_bench.study import SweepInterrupted, launch, load_study, run_study, status_counts

    if not DEMO_STUDY.is_file():
        raise UserError(
            f"demo study {DEMO_STUDY} is missing; run lt-bench demo from a source checkout"
        )
    study = load_study(DEMO_STUDY)
    runs_dir, out = Path(args.runs_dir), _output_dir(Path(args.out))
    points = [point for phase in run_study(study, runs_dir) for point in phase.points]
    done = status_counts(points).get("done", 0)
    print(
        f"{study.name}: {len(points)} runs ({done} already done) in {runs_dir}, {args.jobs} at a time"
    )
    started = time.time()
    lines = _RunLines(study.name, always=True)  # no bar: a line a run, on a terminal too
    launcher = partial(
        launch, executor="local", jobs=args.jobs, progress=False, on_result=lines.run
    )
    try:
        run_study(study, runs_dir, launcher, args.rerun_stale, lines.phase, lines.chosen)
    except SweepInterrupted as stop:
        print(
            f"lt-bench demo: interrupted; {len(stop.in_flight)} runs left resumable: run "
            "lt-bench demo again to finish",
            file=sys.stderr,
        )
        return 130
    result = write_report(runs_dir, out)
    print(f"wrote {len(result['written'])} files to {out} ({time.time() - started:.0f} s)")
    print((out / "main_table.md").read_text(), end="")
    return 1 if (result["runs"].status != "done").any() else 0


# ----------------------------------------------------------------------------- entry point


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lt-bench", description="Long-tailed image classification benchmark suite."
    )
    parser.add_argument("--version", action="version", version=f"lt-bench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_split(sub)
    _add_train(sub)
    _add_sweep(sub)
    _add_report(sub)
    _add_show(sub)
    _add_demo(sub)
    _add_retrain(sub)
    _add_eval(sub)
    _add_datasets(sub)
    _add_list(sub)
    return parser


def _version() -> str:
    """The installed distribution's version; the package's own when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lt-bench")
    except PackageNotFoundError:
        from lt_bench import __version__

        return __version__


def _add_list(sub) -> None:
    kinds = ("methods", "losses", "datasets", "stages", "models")  # lt_bench.catalog.KINDS
    p = sub.add_parser(
        "list", help="list the methods, losses, data sets, stages or models with their options"
    )
    p.add_argument("kind", choices=kinds, help="what to list: " + " | ".join(kinds))
    p.add_argument(
        "--all",
        action="store_true",
        help="models only: every timm.create_model name, not just the project's backbones",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="a plugin module to import first, as a config's imports: (repeatable), e.g. my_methods",
    )
    p.set_defaults(func=cmd_list)


def _add_split(sub) -> None:
    from lt_bench.config import PROFILES, SUBSETS

    p = sub.add_parser(
        "split", help="draw a long-tailed split; write split.json, train.txt and a class-size plot"
    )
    p.add_argument("dataset", help="data set name (see `lt-bench datasets`)")
    p.add_argument(
        "overrides",  # the name `main` appends key=value pairs given after an option to
        nargs="*",
        metavar="data.options.KEY=VALUE",
        help="data set options, as `train` takes them, e.g. data.options.num_classes=4",
    )
    p.add_argument(
        "--ratio",
        type=float,
        default=None,
        help="imbalance ratio asked for, largest / smallest class (>= 1); whole-image class sizes "
        "may give another (split.json records both: ratio, achieved_ratio; a warning says so)",
    )
    p.add_argument(
        "--profile", default=None, help=f"one of {', '.join(PROFILES)} (default: the data set's)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-count",
        type=int,
        default=None,
        help="images in the largest class (default: the data's)",
    )
    p.add_argument(
        "--subset",
        default="ldam",
        choices=SUBSETS,
        help="which images: ldam (LDAM-DRW's, the literature's CIFAR-LT; default) or default_rng",
    )
    p.add_argument(
        "--val-per-class",
        type=int,
        default=20,
        help="validation images of every class (default 20; the head gives its share out of its "
        "training images; 0: none, the published split)",
    )
    p.add_argument("--root", default=None, help="folder holding the data (default: ./data/...)")
    p.add_argument("--download", action="store_true", help="download the data first (CIFAR only)")
    p.add_argument(
        "--grouping",
        default="absolute",
        help="shot groups: absolute (>100 / 20-100 / <20 training images; the default) or "
        "terciles (class-size terciles, tied sizes kept together)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default: splits/<dataset>_<profile>_r<ratio>_s<seed>)",
    )
    p.set_defaults(func=cmd_split)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one run from a YAML config plus key=value overrides")
    p.add_argument(
        "config", help="YAML config, e.g. experiments/mnist_lt.yaml, or - for the schema's defaults"
    )
    p.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. method.name=sar data.ratio=50 seed=1"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run from its last checkpoint"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="train from scratch even if the run exists; the old folder is moved aside to <run>.stale-<n>",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (YAML; method and loss defaults written out) and exit",
    )
    p.set_defaults(func=cmd_train)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run every point of a study not yet done (idempotent)")
    p.add_argument("study", help="study file, e.g. experiments/studies/mnist_lt_demo.yaml")
    p.add_argument(
        "overrides",
        nargs="*",
        help="dotted key=value overrides for every point, after the study's fixed values, e.g. "
        "train.loggers=[mlflow]; keys the grid, arms or tune space set are refused",
    )
    p.add_argument(
        "--runs-dir", default=None, help="where the run folders go (default: runs/<study name>)"
    )
    p.add_argument(
        "--executor", default="local", help="local (processes), slurm (submitit) or submitit_local"
    )
    p.add_argument(
        "--jobs",
        type=_positive,
        default=1,
        help="runs at a time (local worker processes) or slurm array parallelism",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the points and their status; launch nothing"
    )
    p.add_argument(
        "--status",
        action="store_true",
        help="print done / failed / incomplete / pending / stale / running (elsewhere) counts only",
    )
    p.add_argument(
        "--rerun-stale",
        action="store_true",
        help="move done runs whose saved settings differ (stale) aside to <folder>.stale-<n> and run them again",
    )
    p.add_argument("--partition", default=None, help="slurm partition")
    p.add_argument("--time-min", type=int, default=None, help="slurm time limit per run, minutes")
    p.add_argument("--gpus", type=int, default=None, help="GPUs per run (slurm)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs per run (slurm)")
    p.set_defaults(func=cmd_sweep)


def _positive(text: str) -> int:
    """An integer >= 1 (``--jobs``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="collect runs into runs.csv, tables (md, tex, csv) and figures"
    )
    p.add_argument("runs_dir", help="folder holding run directories (any depth)")
    p.add_argument("--out", required=True, help="output folder, e.g. results/NAME")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument(
        "--tsne",
        action="store_true",
        help="also draw the t-SNE of each row's test features (slow: about ten seconds a row)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        help="the row every other row is compared with (default: each row's none row with the same loss and settings)",
    )
    p.set_defaults(func=cmd_report)


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the embedded study on MNIST-LT: 5 methods, SAR's two ablations, balanced softmax with and without SAR, 3 seeds; then its report",
    )
    p.add_argument("--runs-dir", default="runs/mnist_lt_demo")
    p.add_argument("--out", default="results/mnist_lt_demo")
    p.add_argument(
        "--jobs", type=_positive, default=2, help="runs at a time (each in a worker process)"
    )
    p.add_argument(
        "--rerun-stale", action="store_true", help="move stale runs aside and run them again"
    )
    p.set_defaults(func=cmd_demo)


def _add_retrain(sub) -> None:
    p = sub.add_parser(
        "retrain",
        help="a second stage on a finished run: crt, lws, tau_norm or ncm (frozen backbone)",
    )
    p.add_argument("run_dir", help="the parent run directory")
    p.add_argument("--stage", required=True, help="crt | lws | tau_norm | ncm")
    p.add_argument("overrides", nargs="*", help="e.g. stage.epochs=20 stage.lr=0.05")
    p.set_defaults(func=cmd_retrain)


def _add_show(sub) -> None:
    p = sub.add_parser(
        "show",
        help="results at a glance: a runs folder's runs as a table, or one run's summary",
    )
    p.add_argument(
        "path",
        metavar="RUN_OR_RUNS_DIR",
        help="a run folder (holds config.yaml) or a runs folder (a sweep's --runs-dir)",
    )
    p.add_argument(
        "--group",
        action="store_true",
        help="one row per label: mean ± std over seeds (the report's main-table numbers)",
    )
    p.add_argument(
        "--sort",
        default=None,
        metavar="KEY",
        help="best first: top1 | many | medium | few | knn | nc1 | silhouette | time | warnings | "
        "label | seed | seeds | status",
    )
    p.set_defaults(func=cmd_show)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="recompute a run's accuracy groups and separability statistics")
    p.add_argument("run_dir", help="a run directory written by lt-bench train")
    p.add_argument(
        "--train-features",
        action="store_true",
        help="recompute train features from the checkpoint (kNN / NCM memory)",
    )
    p.add_argument(
        "--posthoc-tau", type=float, default=0.0, help="also report post-hoc logit adjustment"
    )
    p.set_defaults(func=cmd_eval)


def _add_datasets(sub) -> None:
    p = sub.add_parser(
        "datasets", help="list the data sets, whether their data is present, and their sizes"
    )
    p.set_defaults(func=cmd_datasets)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and hasattr(args, "overrides") and all("=" in e for e in extra):
            args.overrides += (
                extra  # key=value after an option (retrain RUN --stage crt stage.lr=0.05)
            )
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit_:  # --help, or a usage error already printed on one line
        return int(exit_.code or 0)
    try:
        return args.func(args)
    except UserError as err:
        print(f"lt-bench {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
