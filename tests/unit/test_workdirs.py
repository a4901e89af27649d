"""Which run directories a node's sweep removes: only those of settled runs of our namespace."""

from __future__ import annotations

from syncmaster_ray.job import workdirs


def test_sweep_removes_settled_runs_of_our_namespace_only(tmp_path):
    for name in ("syncmaster-db-run-1_abc", "syncmaster-db-run-2_def", "syncmaster-db-run-3_x1",
                 "syncmaster-other-run-1_abc", "syncmaster-db-run-4", "unrelated"):
        (tmp_path / name).mkdir()
    (tmp_path / "syncmaster-db-run-1_abc" / "staged.csv").write_text("x")

    removed = workdirs.sweep_settled(lambda run_id: run_id in (1, 3, 4), "syncmaster-db-run-", str(tmp_path))

    assert removed == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "syncmaster-db-run-2_def", "syncmaster-db-run-4", "syncmaster-other-run-1_abc", "unrelated"]


def test_remove_run_dirs_takes_every_directory_of_the_run_and_nothing_else(tmp_path):
    for name in ("syncmaster-db-run-1_a", "syncmaster-db-run-1_b", "syncmaster-db-run-11_c"):
        (tmp_path / name).mkdir()
    assert workdirs.remove_run_dirs("syncmaster-db-run-1", str(tmp_path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["syncmaster-db-run-11_c"]
