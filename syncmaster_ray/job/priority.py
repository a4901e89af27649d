"""OS priority of a standby's start-up: it runs at a lower priority, so it does not slow a run that is copying.

A replacement standby starts its Spark (three JVMs) while the next run copies on the same CPUs. Niceness is a
property of each Linux thread and is inherited by the threads and processes a thread creates: the standby's
start-up thread is lowered (so its driver JVM is too), and RayDP's JVMs, which Ray's raylet launches, carry a
marker property in their command line by which they are found and lowered with every thread they have. Once a
run claims the standby, all of it goes back to normal priority; that needs ``CAP_SYS_NICE`` (root, as Ray's
container images run). Without it the claimed standby stays lowered, which only slows it when the CPUs are busy.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import suppress

import psutil

log = logging.getLogger(__name__)

BACKGROUND_NICENESS = 10
MARKER_PROPERTY = "-Dsyncmaster.standby="
POLL_SECONDS = 0.2


def marker_for(token: str) -> str:
    """The JVM option that marks the processes of one standby's Spark (``token``: not a secret)."""
    return f"{MARKER_PROPERTY}{token}"


def lower_current_thread() -> None:
    """This thread, and every thread and process it starts from now on, at background priority."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


def thread_niceness(pid: int) -> set[int]:
    """The niceness of each thread of process ``pid`` (Linux sets it per thread)."""
    return {os.getpriority(os.PRIO_PROCESS, thread.id) for thread in psutil.Process(pid).threads()}


def set_niceness(pid: int, value: int) -> bool:
    """Every thread of process ``pid`` and of its descendants at ``value``; False where it was not allowed."""
    allowed = True
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return True  # gone
    for process in processes:
        with suppress(psutil.Error, FileNotFoundError, ProcessLookupError):
            for thread in process.threads():
                try:
                    os.setpriority(os.PRIO_PROCESS, thread.id, value)
                except PermissionError:
                    allowed = False
                except ProcessLookupError:
                    continue
    return allowed


def marked_processes(marker: str) -> list[int]:
    """Processes of this node whose command line carries ``marker``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with suppress(psutil.Error):
            if marker in (process.info["cmdline"] or ()):
                found.append(process.pid)
    return found


class BackgroundPriority:
    """A standby's start-up at background priority: lowered from ``lower()``, watched until ``started()`` (an idle
    standby starts no process), back to normal at ``restore()`` (a run claimed it)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._keep_lowering, name="standby-priority", daemon=True)

    def lower(self) -> None:
        """From the start-up thread: it (so the driver JVM it launches) and every marked process, as they appear."""
        lower_current_thread()
        self._watcher.start()

    def started(self) -> None:
        """The start-up is over: stop watching for new processes."""
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join()

    def restore(self) -> bool:
        """Back to normal priority: this process with its children (the driver JVM), and the marked processes;
        False where that was not allowed."""
        self.started()  # the watcher is gone before anything is raised: it never lowers them again
        allowed = set_niceness(os.getpid(), 0)
        for pid in marked_processes(self.marker):
            allowed = set_niceness(pid, 0) and allowed
        if not allowed:
            log.warning("The claimed standby keeps its background priority: raising it back needs CAP_SYS_NICE")
        return allowed

    def _keep_lowering(self) -> None:
        while True:
            stopping = self._stop.wait(POLL_SECONDS)
            for pid in marked_processes(self.marker):
                set_niceness(pid, BACKGROUND_NICENESS)
            if stopping:
                return
