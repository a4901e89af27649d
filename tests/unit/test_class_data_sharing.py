import os
import time

from syncmaster_ray.job.class_data_sharing import STALE_LOCK_SECONDS, DriverArchive


def test_disabled_without_a_directory():
    archive = DriverArchive.plan(None, "k")
    assert archive.java_options == "" and archive.mode == "off"
    archive.finish(complete=True)


def test_first_run_dumps_then_publishes_and_later_runs_map(tmp_path):
    first = DriverArchive.plan(str(tmp_path), "k")
    assert first.mode == "dumped"
    assert f"-XX:ArchiveClassesAtExit={first.dumping_to}" in first.java_options
    assert "-XX:+AllowArchivingWithJavaAgent" in first.java_options  # RayDP's driver runs a Java agent
    # Meanwhile another run on the node neither dumps nor maps.
    assert DriverArchive.plan(str(tmp_path), "k").mode == "off"
    first.dumping_to.write_bytes(b"archive")  # what the JVM writes at exit

    first.finish(complete=True)

    assert (tmp_path / "driver-k.jsa").read_bytes() == b"archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driver-k.jsa"]  # no part file, no lock
    later = DriverArchive.plan(str(tmp_path), "k")
    assert later.mode == "mapped"
    assert f"-XX:SharedArchiveFile={tmp_path / 'driver-k.jsa'} -Xshare:auto" in later.java_options


def test_a_driver_that_did_not_exit_cleanly_publishes_nothing(tmp_path):
    archive = DriverArchive.plan(str(tmp_path), "k")
    archive.dumping_to.write_bytes(b"half")

    archive.finish(complete=False)

    assert list(tmp_path.iterdir()) == []
    assert DriverArchive.plan(str(tmp_path), "k").mode == "dumped"  # the next run tries again


def test_a_stale_lock_of_a_dead_run_is_taken_over(tmp_path):
    lock = tmp_path / "driver-k.lock"
    lock.touch()
    assert DriverArchive.plan(str(tmp_path), "k").mode == "off"
    old = time.time() - STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))

    assert DriverArchive.plan(str(tmp_path), "k").mode == "dumped"


def test_keys_differ_per_classpath(tmp_path):
    from syncmaster_ray.job.class_data_sharing import archive_key

    jar = tmp_path / "a.jar"
    jar.write_bytes(b"1")
    key = archive_key([str(jar)], [])
    assert key == archive_key([str(jar)], [])
    assert key != archive_key([str(jar)], ["org.example:x:1"])
    jar.write_bytes(b"12")
    assert key != archive_key([str(jar)], [])


def test_keys_differ_per_install_location(monkeypatch, tmp_path):
    """Two venvs on one node (two checkouts, a CI clone beside a developer's) have their jars at other paths."""
    import pyspark

    from syncmaster_ray.job.class_data_sharing import archive_key

    key = archive_key([], [])
    other = tmp_path / "other-venv" / "pyspark"
    other.mkdir(parents=True)
    monkeypatch.setattr(pyspark, "__file__", str(other / "__init__.py"))
    assert archive_key([], []) != key


SLEEPER = 'public class Sleeper { public static void main(String[] a) throws Exception { System.out.println("up"); ' \
          'Thread.sleep(120000); } }'


def _sleeper_jar(tmp_path):
    """A jar whose main class prints ``up`` and sleeps: a JVM that, like an executor, never exits by itself."""
    import shutil
    import subprocess

    import pytest

    if not (shutil.which("javac") and shutil.which("jar")):
        pytest.skip("needs a JDK (javac, jar)")
    source = tmp_path / "src" / "Sleeper.java"
    source.parent.mkdir()
    source.write_text(SLEEPER)
    subprocess.run(["javac", str(source)], check=True)
    jar = tmp_path / "sleeper.jar"
    subprocess.run(["jar", "cf", str(jar), "-C", str(source.parent), "Sleeper.class"], check=True)
    return jar


def test_the_executor_archive_is_dumped_live_from_the_marked_jvm_then_mapped(tmp_path):
    import shlex
    import subprocess

    from syncmaster_ray.job.class_data_sharing import ExecutorArchive

    jar, archives = _sleeper_jar(tmp_path), tmp_path / "cds"
    first = ExecutorArchive.plan(str(archives), "k")
    assert first.mode == "dumped" and "-XX:+RecordDynamicDumpInfo" in first.java_options
    jvm = subprocess.Popen(["java", *shlex.split(first.java_options), "-cp", str(jar), "Sleeper"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert jvm.stdout.readline().strip() == "up"
        assert first.dump_live() is True
    finally:
        jvm.kill()
        jvm.wait()
    assert (archives / "executor-k.jsa").stat().st_size > 0 and not list(archives.glob("*.lock"))
    later = ExecutorArchive.plan(str(archives), "k")
    assert later.mode == "mapped"
    # -Xshare:on fails the JVM if it cannot map the archive: the dumped one fits this classpath.
    mapped = subprocess.run(["java", *shlex.split(later.java_options), "-Xshare:on", "-cp", str(jar), "-version"],
                            capture_output=True, text=True)
    assert mapped.returncode == 0, mapped.stderr


def test_without_jcmd_or_executor_the_run_gives_up_and_a_later_one_tries_again(tmp_path, monkeypatch):
    from syncmaster_ray.job import class_data_sharing
    from syncmaster_ray.job.class_data_sharing import ExecutorArchive

    archive = ExecutorArchive.plan(str(tmp_path), "k")
    assert archive.dump_live() is False  # no JVM carries this run's marker
    assert archive.mode == "off" and not list(tmp_path.glob("*.lock"))
    monkeypatch.setattr(class_data_sharing, "_jcmd", lambda: None)
    again = ExecutorArchive.plan(str(tmp_path), "k")
    assert again.mode == "dumped" and again.dump_live() is False and again.mode == "off"
    assert not list(tmp_path.glob("executor-*"))
