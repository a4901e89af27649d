"""A class-data-sharing (CDS) archive for the Spark driver JVM, one per node and classpath.

Every run starts a fresh driver JVM that loads the same ~10,000 Spark, Hadoop and JDBC classes; JDK 17 can map
them from an archive instead (measured: RayDP start-up and the first JDBC query 2-3 s faster). The first run on a
node (per classpath) dumps the archive when its driver JVM exits; later runs map it. If the archive does not
match the classpath, ``-Xshare:auto`` makes the JVM ignore it, so a stale archive costs nothing but the speed-up.

Dumping writes to a ``.part`` file, renamed once the JVM has exited, and only one run per node dumps at a time
(an ``O_EXCL`` lock file), so readers never map a half-written archive.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
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


@dataclass
class DriverArchive:
    """What one run does about the archive: map it, dump it, or nothing (``java_options`` empty)."""

    path: Path | None = None
    dumping_to: Path | None = None
    lock: Path | None = None
    java_options: str = ""

    @classmethod
    def plan(cls, directory: str | None, key: str) -> DriverArchive:
        if not directory:
            return cls()
        root = Path(directory)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("No class-data-sharing archive: cannot create %s (%s)", root, exc)
            return cls()
        path = root / f"driver-{key}.jsa"
        if path.exists():
            return cls(path=path, java_options=f"{_AGENT_FLAGS} -XX:SharedArchiveFile={path} -Xshare:auto")
        lock = root / f"driver-{key}.lock"
        if not _take_lock(lock):
            return cls()  # another run is dumping it right now
        part = root / f"driver-{key}.{os.getpid()}.part"
        # Dumping warns about every class it cannot archive (signed jars, old class files): thousands of lines
        # that would bury the run's own log.
        dump = f"{_AGENT_FLAGS} -XX:ArchiveClassesAtExit={part} -Xlog:cds=off -Xlog:cds+dynamic=off"
        return cls(path=path, dumping_to=part, lock=lock, java_options=dump)

    @property
    def mode(self) -> str:
        """``mapped``, ``dumped`` (this run built it) or ``off``, for the run's metrics."""
        if self.dumping_to is not None:
            return "dumped"
        return "mapped" if self.java_options else "off"

    def finish(self, driver_exited: bool) -> None:
        """After the driver JVM is gone: publish a dumped archive atomically, drop the lock."""
        try:
            if self.dumping_to is not None and self.path is not None:
                if driver_exited and self.dumping_to.is_file() and self.dumping_to.stat().st_size > 0:
                    os.replace(self.dumping_to, self.path)
                    log.info("Class-data-sharing archive written: %s", self.path)
                else:
                    self.dumping_to.unlink(missing_ok=True)
        finally:
            if self.lock is not None:
                self.lock.unlink(missing_ok=True)


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
