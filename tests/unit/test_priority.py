"""A standby's start-up at background priority (``job/priority.py``), on real processes and threads of this machine.

Raising a priority back needs CAP_SYS_NICE: these tests run as root, as the CI does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest

from syncmaster_ray.job.priority import BACKGROUND_NICENESS, BackgroundPriority, marker_for, thread_niceness

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority back needs CAP_SYS_NICE")

# A process with a marked command line and a child, both with a second thread, as a JVM has many.
SLEEPER = """
import subprocess, sys, threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
child = subprocess.Popen([sys.executable, "-c", "import threading, time; "
                          "threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def marked_process():
    marker = marker_for(uuid.uuid4().hex[:12])
    process = subprocess.Popen([sys.executable, "-c", SLEEPER, marker], stdout=subprocess.PIPE, text=True)
    child = int(process.stdout.readline())
    yield marker, process.pid, child
    process.kill()
    psutil.Process(child).kill()
    process.wait()


def test_marked_processes_and_their_children_are_lowered_then_restored(marked_process):
    marker, pid, child = marked_process
    priority = BackgroundPriority(marker)
    started_from_thread: list[int] = []

    def start_up() -> None:  # the standby's start-up thread: what it launches inherits its priority
        priority.lower()
        launched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        started_from_thread.append(launched.pid)

    thread = threading.Thread(target=start_up)
    thread.start()
    thread.join()
    try:
        wait_until(lambda: thread_niceness(pid) == thread_niceness(child) == {BACKGROUND_NICENESS})
        assert thread_niceness(started_from_thread[0]) == {BACKGROUND_NICENESS}
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # only the start-up thread

        priority.started()
        assert priority.restore() is True
        assert thread_niceness(pid) == thread_niceness(child) == {0}
        assert thread_niceness(started_from_thread[0]) == {0}  # this process's children: the driver JVM
        time.sleep(0.5)  # the watcher has stopped: nothing lowers them again
        assert thread_niceness(pid) == {0}
    finally:
        psutil.Process(started_from_thread[0]).kill()


def test_restore_during_start_up_stops_the_watcher_for_good(marked_process):
    marker, pid, _ = marked_process
    priority = BackgroundPriority(marker)
    thread = threading.Thread(target=priority.lower)
    thread.start()
    thread.join()
    wait_until(lambda: thread_niceness(pid) == {BACKGROUND_NICENESS})
    priority.restore()  # a run claimed the standby while it was starting
    time.sleep(0.6)
    assert thread_niceness(pid) == {0}


def test_an_unmarked_process_is_left_alone(marked_process):
    _, pid, _ = marked_process
    priority = BackgroundPriority(marker_for("someone-else"))
    thread = threading.Thread(target=priority.lower)
    thread.start()
    thread.join()
    time.sleep(0.6)
    priority.started()
    assert thread_niceness(pid) == {0}
