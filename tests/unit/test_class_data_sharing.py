import os
import time

from syncmaster_ray.job.class_data_sharing import STALE_LOCK_SECONDS, DriverArchive


def test_disabled_without_a_directory():
    archive = DriverArchive.plan(None, "k")
    assert archive.java_options == "" and archive.mode == "off"
    archive.finish(driver_exited=True)


def test_first_run_dumps_then_publishes_and_later_runs_map(tmp_path):
    first = DriverArchive.plan(str(tmp_path), "k")
    assert first.mode == "dumped"
    assert f"-XX:ArchiveClassesAtExit={first.dumping_to}" in first.java_options
    assert "-XX:+AllowArchivingWithJavaAgent" in first.java_options  # RayDP's driver runs a Java agent
    # Meanwhile another run on the node neither dumps nor maps.
    assert DriverArchive.plan(str(tmp_path), "k").mode == "off"
    first.dumping_to.write_bytes(b"archive")  # what the JVM writes at exit

    first.finish(driver_exited=True)

    assert (tmp_path / "driver-k.jsa").read_bytes() == b"archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driver-k.jsa"]  # no part file, no lock
    later = DriverArchive.plan(str(tmp_path), "k")
    assert later.mode == "mapped"
    assert f"-XX:SharedArchiveFile={tmp_path / 'driver-k.jsa'} -Xshare:auto" in later.java_options


def test_a_driver_that_did_not_exit_cleanly_publishes_nothing(tmp_path):
    archive = DriverArchive.plan(str(tmp_path), "k")
    archive.dumping_to.write_bytes(b"half")

    archive.finish(driver_exited=False)

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
