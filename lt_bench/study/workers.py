"""A sweep's local worker processes: at most ``jobs`` spawned processes, each running one task at
a time, and a sweep that survives them and cleans up after itself.

- The sweep process never trains. A task that takes its process down (SIGKILL, a segmentation
  fault, the out-of-memory killer) takes only its worker: ``died(task, how)`` gives its result
  (the launcher marks the run failed, naming how the worker died), a new worker takes the next
  task and the sweep goes on.
- SIGINT or SIGTERM to the sweep stops its workers too: SIGTERM to each, which a worker turns into
  KeyboardInterrupt (the engine closes the run, leaving it resumable), SIGKILL after
  :data:`GRACE_S` if one is still alive (a hang guard); then :class:`SweepInterrupted` is raised.
  A stopped run keeps its last checkpoint and the kernel releases its lock.
- Workers ignore SIGINT: Ctrl-C at a terminal reaches the whole process group, and the sweep alone
  decides what happens.
- Spawned, not forked: a fork would copy the parent's torch threads and state. Starting one costs
  seconds of imports, so idle workers are kept for the next launch of this process (a tuned
  study's second phase, a notebook's next sweep), but only for one made in the same working
  folder and environment; a worker idles in ``recv`` and exits when this process goes away, and
  the idle ones are told to exit when it ends normally.
- A worker starts with this process's ``sys.path`` (``spawn`` passes it, and the working folder)
  and environment: the folders :mod:`lt_bench.plugins` adds for a study's ``imports:`` reach it,
  and a worker is reused only where the import path is unchanged. A worker imports a point's
  ``imports`` itself, before it trains (:func:`lt_bench.validate.validate`); installed plugins (the
  ``lt_bench.plugins`` entry points) it loads when it first reads a registry.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from lt_bench import failpoints

FAILPOINT = "LT_BENCH_FAILPOINT"  # tests' fault injection (lt_bench.failpoints)

# Seconds a stopped worker gets to close its run before it is killed: a hang guard only.
GRACE_S = 30.0

Finished = Callable[[int, dict], None]  # finished(task index, result)
Died = Callable[[int, str], dict]  # died(task index, how the worker died) -> the task's result


class SweepInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the sweep; ``in_flight``: the tasks its workers were running."""

    def __init__(self, in_flight: list[int]):
        super().__init__(f"interrupted with {len(in_flight)} tasks running")
        self.in_flight = in_flight


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    made_in: tuple  # the working folder, environment and import path it was started with
    task: int | None = None


# Workers left idle by earlier launches of this process, for the next ones (at most MAX_IDLE).
_IDLE: list[_Worker] = []
MAX_IDLE = 4


def run_tasks(
    target: Callable[..., dict], tasks: list[tuple], jobs: int, finished: Finished, died: Died
) -> None:
    """``target(*tasks[i])`` for every ``i`` in at most ``jobs`` worker processes, in order;
    ``finished(i, result)`` as each returns, in this process."""
    queue, jobs = list(range(len(tasks))), max(jobs, 1)
    workers: list[_Worker] = []
    failpoint = os.environ.get(FAILPOINT)  # this process's now, for reused workers too
    messages = [(target, task, failpoint) for task in tasks]
    with _interrupts_raise():
        try:
            while queue or any(w.task is not None for w in workers):
                _assign(workers, queue, messages, jobs)
                busy = {w.conn: w for w in workers if w.task is not None}
                for conn in wait(list(busy)):
                    _collect(busy[conn], workers, finished, died)
        except BaseException as err:
            in_flight = [w.task for w in workers if w.task is not None]
            _stop(workers)
            if isinstance(err, KeyboardInterrupt):
                raise SweepInterrupted(in_flight) from None
            raise
    _keep_idle(workers)  # every one idle and alive


def _assign(workers: list[_Worker], queue: list[int], tasks: list[tuple], jobs: int) -> None:
    """Start (or reuse) workers up to ``jobs``, no more than there is work for; give each idle one
    a task."""
    running = sum(w.task is not None for w in workers)
    while len(workers) < min(jobs, running + len(queue)):
        workers.append(_idle_worker() or _start())
    for worker in workers:
        if worker.task is None and queue:
            worker.task = queue.pop(0)
            with contextlib.suppress(OSError):  # a dead worker: its EOF is collected next
                worker.conn.send(tasks[worker.task])


def _collect(worker: _Worker, workers: list[_Worker], finished: Finished, died: Died) -> None:
    """A busy worker's result, or, when it died, ``died``'s; a dead worker leaves the pool."""
    task, worker.task = worker.task, None
    try:
        result = worker.conn.recv()
    except (EOFError, OSError):
        workers.remove(worker)
        worker.conn.close()
        result = died(task, _how_it_died(worker.process))
    finished(task, result)


def _how_it_died(process: multiprocessing.process.BaseProcess) -> str:
    process.join(GRACE_S)
    if process.is_alive():  # it closed its end of the pipe but did not exit
        process.kill()
        process.join()
    code = process.exitcode
    if code is None or code >= 0:
        return f"it exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    cause = {
        "SIGKILL": ": kill -9, or the out-of-memory killer",
        "SIGSEGV": ": a segmentation fault",
        "SIGBUS": ": a bus error",
        "SIGABRT": ": an abort",
    }.get(name, "")
    return f"killed by {name}{cause}"


def _made_in() -> tuple:
    """What a spawned worker takes from this process when it starts: a worker is reused only
    where these are unchanged (a relative run folder, an environment variable such as
    ``LT_BENCH_FAILPOINT`` or ``CUDA_VISIBLE_DEVICES``, mean what they meant when it started)."""
    environment = sorted((k, v) for k, v in os.environ.items() if k not in _PER_TASK_VARIABLES)
    return os.getcwd(), tuple(environment), tuple(sys.path)


# Variables a reused worker need not have started with: pytest names the current test in one, and
# the failpoint is sent with each task.
_PER_TASK_VARIABLES = ("PYTEST_CURRENT_TEST", FAILPOINT)


def _idle_worker() -> _Worker | None:
    """An idle worker of an earlier launch made in this folder and environment, if any."""
    here = _made_in()
    for worker in list(_IDLE):
        if not worker.process.is_alive():
            _IDLE.remove(worker)
            _stop([worker])
        elif worker.made_in == here:
            _IDLE.remove(worker)
            return worker
    return None


def _keep_idle(workers: list[_Worker]) -> None:
    """Keep idle workers for the next launch; beyond :data:`MAX_IDLE`, the oldest are stopped."""
    _IDLE.extend(workers)
    while len(_IDLE) > MAX_IDLE:
        _stop([_IDLE.pop(0)])


def _start() -> _Worker:
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=_serve, args=(there,), name="lt-bench-worker")
    process.start()
    there.close()  # the worker's end: once it dies, reading ours ends (EOFError)
    return _Worker(process, here, _made_in())


def _stop(workers: list[_Worker]) -> None:
    """End workers: idle ones are told to exit, busy ones (an interrupt, an error) get SIGTERM;
    any still alive after :data:`GRACE_S` is killed. Signals wait until this is done."""
    with _signals_held():
        for worker in workers:
            if worker.task is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            else:
                worker.process.terminate()
        for worker in workers:
            worker.process.join(GRACE_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()


def stop_idle_workers() -> None:
    """Stop the workers kept for the next launch (done at exit; call it to free their memory)."""
    idle, _IDLE[:] = list(_IDLE), []
    _stop(idle)


# Before multiprocessing joins this process's children at exit (an idle worker would wait forever).
multiprocessing.util.Finalize(None, stop_idle_workers, exitpriority=10)


def _serve(conn: Connection) -> None:
    """A worker: run the tasks ``(function, arguments, failpoint)`` the sweep sends, with the
    sweep's failpoint armed, until it sends None or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    with contextlib.suppress(EOFError, OSError, KeyboardInterrupt):
        task = conn.recv()
        while task is not None:
            target, arguments, failpoint = task
            failpoints.arm(failpoint)
            conn.send(target(*arguments))
            task = conn.recv()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in this process, as SIGINT does (main thread only: only
    it can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (blocked, then delivered) while the workers are being stopped."""
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
