"""Class-data-sharing (CDS) archives for the Spark driver and executor JVMs, one per node, kind and classpath.

Every run starts fresh JVMs that load the same ~10,000 Spark, Hadoop and JDBC classes; JDK 17 can map them from an
archive instead (measured: RayDP start-up and the first JDBC query 2-3 s faster with the driver's; the executor's
saves about 1.5 CPU seconds per run). The first run on a node (per classpath) dumps an archive; later runs map it.
If an archive does not match the classpath, ``-Xshare:auto`` makes the JVM ignore it, so a stale archive costs
nothing but the speed-up.

- The driver's is dumped when its JVM exits (``-XX:ArchiveClassesAtExit``).
- An executor never exits by itself (RayDP kills it), so its JVM records what a dump needs
  (``-XX:+RecordDynamicDumpInfo``) and, once it has run a read, the run dumps it live with ``jcmd <pid> VM.cds
  dynamic_dump``. The executor's process is found by a marker in its command line; one on another node, or a node
  without ``jcmd`` (a JRE), is left undumped.

Dumping writes to a ``.part`` file, renamed once complete, and only one run per node dumps a kind at a time (an
``O_EXCL`` lock file), so readers never map a half-written archive.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# RayDP runs the driver with a Java agent; JDK 17 dumps such JVMs only with this diagnostic flag.
_AGENT_FLAGS = "-XX:+UnlockDiagnosticVMOptions -XX:+AllowArchivingWithJavaAgent"
STALE_LOCK_SECONDS = 600


def archive_key(jars: list[str], maven_packages: list[str], jvm_options: str = "") -> str:
    """Changes whenever the driver's classpath may: Java, Python packages and where they are installed (their
    jars are on the classpath: two venvs on one node must not share an archive, the JVM refuses it), jars (path,
    size, mtime); and with the driver's JVM options (an archive dumped under one collector is a poorer fit for
    another)."""
    import pyspark
    import raydp

    parts = [sys.version, pyspark.__version__, raydp.__version__, _java_identity(), jvm_options,
             *sorted(maven_packages), os.path.dirname(os.path.realpath(pyspark.__file__)),
             os.path.dirname(os.path.realpath(raydp.__file__))]
    for jar in jars:
        stat = os.stat(jar)
        parts.append(f"{jar}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _java_identity() -> str:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return "no-java"
    real = os.path.realpath(java)
    return f"{real}:{int(os.stat(real).st_mtime)}"


# Dumping warns about every class it cannot archive (signed jars, old class files): thousands of lines that would
# bury the run's own log.
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
EXECUTOR_MARKER = "-Dsyncmaster.cds.executor="


@dataclass
class DriverArchive:
    """What one run does about a JVM kind's archive: map it, dump it, or nothing (``java_options`` empty)."""

    path: Path | None = None
    dumping_to: Path | None = None
    lock: Path | None = None
    java_options: str = ""
    kind = "driver"

    @classmethod
    def plan(cls, directory: str | None, key: str) -> DriverArchive:
        root = _archive_dir(directory)
        if root is None:
            return cls()
        path = root / f"{cls.kind}-{key}.jsa"
        if path.exists():
            return cls(path=path, java_options=f"{_AGENT_FLAGS} -XX:SharedArchiveFile={path} -Xshare:auto")
        lock = root / f"{cls.kind}-{key}.lock"
        if not _take_lock(lock):
            return cls()  # another run is dumping it right now
        part = root / f"{cls.kind}-{key}.{os.getpid()}.part"
        return cls(path=path, dumping_to=part, lock=lock, java_options=cls._dump_options(part))

    @staticmethod
    def _dump_options(part: Path) -> str:
        return f"{_AGENT_FLAGS} -XX:ArchiveClassesAtExit={part} {_QUIET}"

    @property
    def mode(self) -> str:
        """``mapped``, ``dumped`` (this run built it) or ``off``, for the run's metrics."""
        if self.dumping_to is not None:
            return "dumped"
        return "mapped" if self.java_options else "off"

    def finish(self, complete: bool) -> None:
        """Once the dump is over (the driver JVM gone): publish a complete archive atomically, drop the lock."""
        try:
            if self.dumping_to is not None and self.path is not None:
                if complete and self.dumping_to.is_file() and self.dumping_to.stat().st_size > 0:
                    os.replace(self.dumping_to, self.path)
                    log.info("Class-data-sharing archive written: %s", self.path)
                else:
                    self.dumping_to.unlink(missing_ok=True)
        finally:
            if self.lock is not None:
                self.lock.unlink(missing_ok=True)


class ExecutorArchive(DriverArchive):
    """The executors' archive, dumped live from a marked executor JVM of this node (``dump_live``)."""

    kind = "executor"

    @staticmethod
    def _dump_options(part: Path) -> str:
        # The marker names this dump's part file: unique to the run, never a secret.
        return f"{_AGENT_FLAGS} -XX:+RecordDynamicDumpInfo {_QUIET} {EXECUTOR_MARKER}{part.name}"

    def dump_live(self, timeout: float = 120) -> bool:
        """Dump the archive from this run's executor JVM on this node, then publish it; True once published."""
        if self.dumping_to is None or self.path is None:
            return False
        jcmd, pid = _jcmd(), _marked_jvm(f"{EXECUTOR_MARKER}{self.dumping_to.name}")
        if jcmd is None or pid is None:
            self._give_up()
            log.info("Executor class-data-sharing archive not dumped: %s", "no jcmd (a JRE?)" if jcmd is None
                     else "no executor of this run on the driver's node")
            return False
        try:
            done = subprocess.run([jcmd, str(pid), "VM.cds", "dynamic_dump", str(self.dumping_to)],
                                  capture_output=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._give_up()
            log.warning("Executor class-data-sharing archive not dumped: %s", type(exc).__name__)
            return False
        if done.returncode != 0 or not self.dumping_to.is_file():
            self._give_up()
            log.warning("Executor class-data-sharing archive not dumped (jcmd exit code %s)", done.returncode)
            return False
        self.finish(complete=True)
        return True

    def _give_up(self) -> None:
        """Release the lock: a later run tries again. This one reports ``off``."""
        self.finish(complete=False)
        self.dumping_to, self.java_options = None, ""


def _archive_dir(directory: str | None) -> Path | None:
    if not directory:
        return None
    root = Path(directory)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("No class-data-sharing archive: cannot create %s (%s)", root, exc)
        return None
    return root


def _jcmd() -> str | None:
    home = os.environ.get("JAVA_HOME")
    beside_java = os.path.join(os.path.dirname(os.path.realpath(shutil.which("java") or "")), "jcmd")
    for candidate in (os.path.join(home, "bin", "jcmd") if home else None, beside_java, shutil.which("jcmd")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _marked_jvm(marker: str) -> int | None:
    """The pid of the JVM of this node whose command line carries ``marker``."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in (process.info["cmdline"] or ()):
                return process.pid
        except psutil.Error:
            continue
    return None


def _take_lock(lock: Path) -> bool:
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink(missing_ok=True)  # left by a run that died while dumping
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def stop_driver_jvm(timeout: float = 60) -> bool:
    """End the driver JVM that pyspark launched (after ``stop_spark``) and wait for it; True once it exited.

    PySpark's gateway JVM exits when its stdin closes; waiting here means no driver JVM outlives the run's actor
    and a dumping JVM finishes writing its archive.
    """
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None) if gateway is not None else None
    if process is None:
        return True
    try:
        gateway.shutdown()
    except Exception:
        log.debug("py4j gateway shutdown failed", exc_info=True)
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=timeout)
    except Exception:
        log.warning("The Spark driver JVM did not exit within %.0f s: killing it", timeout)
        process.kill()
        return False
    finally:
        SparkContext._gateway = None
        SparkContext._jvm = None
    return True
