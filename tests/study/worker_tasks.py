"""Tasks for the worker-pool tests, in a module of their own so that a worker imports no torch."""

import os
import signal


def task(action: str, note_pid_in: str = "") -> dict:
    """Return, or end this worker the way ``action`` says; first write its pid to a file if asked."""
    if note_pid_in:
        with open(note_pid_in, "w") as f:
            f.write(str(os.getpid()))
    if action == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "sigsegv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if action == "exit":
        os._exit(3)
    if action == "ignore sigint":  # as Ctrl-C at a terminal reaches every process of the group
        os.kill(os.getpid(), signal.SIGINT)
    if action in ("sigterm the sweep", "sigint the sweep"):
        os.kill(os.getppid(), signal.SIGTERM if action == "sigterm the sweep" else signal.SIGINT)
    if action.startswith("wait") or action.endswith("the sweep"):
        signal.pause()  # until the sweep stops this worker
    return {"action": action, "pid": os.getpid()}
