"""Break a promise on purpose and see its test fail: ``python -m tests.mutations [NAME ...]``.

Each mutation is one textual edit of the code (the old text must occur exactly once) and the tests that must fail
with it. The runner applies one edit, runs those tests with the real services (``-m ''``: long-tier ones too),
restores the file and reports KILLED (the tests failed, as they must) or SURVIVED (a weak test). It edits the
checkout it runs in, so run it in a clone of its own, never beside a test run of the same checkout.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    promise: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


POSTGRES = "tests/integration/test_transfer_postgres.py"
RECOVERY = "tests/integration/test_recovery.py"
FOOTPRINT = "tests/integration/test_worker_footprint.py"
SUPERVISION = "tests/integration/test_supervision.py"
ENTRYPOINT = "syncmaster_ray/job/entrypoint.py"
SUPERVISOR = "syncmaster_ray/worker/supervisor.py"
ONE_RUN = f"{POSTGRES}::test_transfer_copies_every_row_and_reports_finished[one-executor]"

MUTATIONS = (
    Mutation("skip_capacity_wait", "a run waits for its placement group before it copies",
             ENTRYPOINT, '    log.info("Waiting for cluster capacity: %s", _describe(asked))\n', "    return True\n",
             ("tests/integration/test_status.py",)),
    Mutation("capacity_queue_ignored", "a run gets capacity only in its turn: first come, first served",
             "syncmaster_ray/queue_order.py", "    if position == 0:\n",
             "    if True:\n",
             ("tests/integration/test_capacity_queue.py",)),
    Mutation("priorities_ignored", "a later run of a higher-priority slug gets capacity first",
             "syncmaster_ray/queue_order.py", "replace(entry, priority=priorities.get(entry.slug, 0))",
             "replace(entry, priority=0)",
             ("tests/integration/test_capacity_queue.py::test_priorities_put_a_later_run_of_a_higher_slug_first",)),
    Mutation("attempts_never_retried", "a transient failure is tried again as a job of its own",
             SUPERVISOR, "        if not self._retryable(record, submission_id, verdict):\n",
             "        if True:\n",
             ("tests/integration/test_attempts.py::test_a_transient_failure_is_tried_again_as_a_job_of_its_own_and_"
              "the_run_finishes",)),
    Mutation("partial_writes_retried", "a run that may have written part of its target is not tried again",
             "syncmaster_ray/attempts.py", "    return repeatable is None or repeatable or code",
             "    return True or code",
             ("tests/integration/test_attempts.py::test_permanent_failures_and_possibly_partial_writes_get_one_"
              "attempt",)),
    Mutation("skip_fit_check", "a transfer bigger than the cluster fails at once, reserving nothing",
             ENTRYPOINT, "    if not fits_somewhere(plan, cluster_total):", "    if False:",
             (f"{POSTGRES}::test_transfer_bigger_than_the_cluster_fails_at_once_naming_what_it_asked",)),
    Mutation("reconcile_hands_back_ended_jobs", "reconcile settles a run whose job ended with the job's outcome",
             SUPERVISOR, "        if not snapshot.state.is_terminal():\n            return self.hand_back",
             "        if snapshot.state is not JobState.MISSING:\n            return self.hand_back",
             (f"{RECOVERY}::test_reconcile_settles_runs_whose_worker_is_gone",)),
    Mutation("reconcile_fails_running_jobs", "reconcile hands a run whose job still runs back to a worker",
             SUPERVISOR, "        if not snapshot.state.is_terminal():\n            return self.hand_back",
             "        if False:\n            return self.hand_back",
             (f"{RECOVERY}::test_reconcile_settles_runs_whose_worker_is_gone",)),
    Mutation("no_unreachable_grace", "an unreachable Jobs API is waited out for the grace period",
             SUPERVISOR, "                    if time.monotonic() - unreachable_since > grace:",
             "                    if True:",
             (f"{RECOVERY}::test_jobs_api_unreachable_past_the_grace_period_fails_the_run",)),
    Mutation("resubmit_on_reattach", "a worker taking a run over never submits it a second time",
             SUPERVISOR,
             '            log.info("Run %s: re-attaching to Ray job %s (%s)", run_id, submission_id, snapshot.state)\n'
             '            return True\n',
             '            jobs.submit(submission_id=f"{submission_id}-again", metadata={}, entrypoint='
             'f"{self.settings.ray.job_python} -m syncmaster_ray.job --run-id {run_id}")\n            return True\n',
             (f"{RECOVERY}::test_worker_killed_mid_run_is_replaced_and_the_same_job_finishes",)),
    Mutation("resubmit_a_job_the_head_forgot", "a job submitted once and forgotten by the head is not submitted again",
             SUPERVISOR, "        if was_submitted(self.repo.get_record(run_id)):\n            return False\n", "",
             (f"{SUPERVISION}::test_a_job_the_head_forgot_after_it_was_submitted_is_never_submitted_again",)),
    Mutation("supervise_inside_the_task", "the task's message is acknowledged while its run goes on",
             "syncmaster_ray/worker/tasks.py", "    run_pool().start(supervisor, taken)\n",
             "    supervisor.supervise(taken)\n",
             (f"{SUPERVISION}::test_the_task_message_is_acknowledged_while_its_run_goes_on",)),
    Mutation("no_automatic_reconcile", "workers settle the runs of their queues whose worker is gone by themselves",
             "syncmaster_ray/worker/pool.py",
             "                for run_id, outcome in self._make_supervisor().reconcile(slugs=self._slugs):",
             "                for run_id, outcome in ():",
             (f"{RECOVERY}::test_worker_killed_mid_run_is_replaced_and_the_same_job_finishes",)),
    Mutation("stop_before_claim_left_unsettled", "a stop landing between the read and the claim ends the run",
             SUPERVISOR, "        if status == Status.SEND_STOP_SIGNAL and not was_submitted(record):",
             "        if False:",
             (f"{SUPERVISION}::test_a_stop_landing_between_reading_the_run_and_claiming_it_ends_the_run_stopped",)),
    Mutation("predecessor_stop_forgotten", "a job the dead predecessor stopped on request ends the run STOPPED",
             SUPERVISOR, "            if stop_requested or self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL:",
             "            if stop_requested:",
             (f"{SUPERVISION}::test_a_worker_taking_over_a_job_its_dead_predecessor_stopped_on_request_ends_the_run_"
              "stopped",)),
    Mutation("reason_outside_the_conditional_end", "a supervisor losing the race to end a run writes no reason",
             "syncmaster_ray/db/repository.py",
             "            if result.rowcount != 1:\n                return False\n            fields: dict[str, Any]",
             "            fields: dict[str, Any]",
             (f"{SUPERVISION}::test_a_supervisor_losing_the_race_to_end_a_run_writes_no_reason_onto_it",)),
    Mutation("watch_ends_on_any_error", "errors that are not ours while watching do not end supervision",
             SUPERVISOR, "            except (SyncmasterRayError, LeaseLost):\n                raise\n"
             "            except Exception:\n", "            except (SyncmasterRayError, LeaseLost):\n"
             "                raise\n            except ZeroDivisionError:\n",
             (f"{SUPERVISION}::test_errors_that_are_not_ours_while_watching_do_not_end_supervision",)),
    Mutation("node_secrets_in_env_accepted", "a job refuses a node whose environment holds our secrets",
             ENTRYPOINT, "        if refused_node:  # the node's", "        if False:  # the node's",
             ("tests/integration/test_node_env.py",)),
    Mutation("node_secrets_left_in_env", "no process of a node carries the node's secrets in its environment",
             "syncmaster_ray_dev/local_cluster.py", "        if not self.secrets_in_env:\n",
             "        if False:\n",
             (f"{POSTGRES}::test_stop_during_the_write_leaves_the_target_as_it_was_and_the_next_run_replaces_it",)),
    Mutation("late_standby_claim_accepted", "a standby claim arriving after its deadline is refused",
             "syncmaster_ray/job/standby.py",
             "            if self.run_id is not None or self._evicted or (deadline is not None and time.time() > "
             "deadline):",
             "            if self.run_id is not None or self._evicted:",
             ("tests/unit/test_standby.py",)),
    Mutation("claimed_standby_keeps_low_priority", "a run claiming a standby copies at normal OS priority",
             "syncmaster_ray/job/priority.py", "        allowed = set_niceness(os.getpid(), 0)\n",
             "        allowed = True\n",
             ("tests/unit/test_priority.py",)),
    Mutation("replacement_counts_the_claimed_standby", "a run claiming a standby starts its replacement at once",
             "syncmaster_ray/job/standby.py", "    if len(existing - {claimed}) >= wanted:\n",
             "    if len(existing) >= wanted:\n",
             ("tests/unit/test_standby.py",)),
    Mutation("write_target_in_place", "a DB target is written through a staging table swapped in at the end",
             "syncmaster_ray/handlers/staging.py", "        staging = self.side_table()\n",
             "        staging = self.table_name\n",
             (f"{POSTGRES}::test_stop_during_the_write_leaves_the_target_as_it_was_and_the_next_run_replaces_it",
              "tests/integration/test_transfer_databases.py::"
              "test_mysql_target_stopped_mid_write_is_left_as_it_was_and_the_next_run_replaces_it")),
    Mutation("hive_write_target_in_place", "a managed Hive target is replaced through a staging table",
             "syncmaster_ray/handlers/hive.py",
             "        if target is not None and (self.appends or not target.managed):",
             "        if target is not None:",
             ("tests/integration/test_transfer_databases.py::"
              "test_hive_target_stopped_mid_write_is_left_as_it_was_and_the_next_run_replaces_it",)),
    Mutation("prune_unsettled_runs", "retention never deletes the job of a run still active",
             SUPERVISOR, "                    and self.repo.is_settled(run_id))", ")",
             (f"{FOOTPRINT}::test_retention_keeps_the_jobs_of_unsettled_runs_and_jobs_not_ours",)),
    Mutation("prune_jobs_not_ours", "retention never deletes a job another tool submitted",
             SUPERVISOR, "            return (run_id is not None and is_submission_of(submission_id, run_id, "
             "namespace)\n                    and self.repo.is_settled(run_id))",
             "            return run_id is None or self.repo.is_settled(run_id)",
             (f"{FOOTPRINT}::test_retention_keeps_the_jobs_of_unsettled_runs_and_jobs_not_ours",)),
    Mutation("prune_young_jobs", "retention keeps a job younger than the retention period",
             "syncmaster_ray/ray_client.py", "if job.end_time and job.end_time <= cutoff_ms and is_ours(",
             "if job.end_time and is_ours(", (ONE_RUN,)),
    Mutation("fernet_key_in_job_metadata", "the Fernet key never reaches the dashboard",
             SUPERVISOR, '"submitted_by": "syncmaster-ray"}',
             '"submitted_by": "syncmaster-ray", "key": self.settings.secret_key}',
             (ONE_RUN,)),
    Mutation("fernet_key_in_actor_name", "the Fernet key never reaches the state API (the per-run check does "
             "not look there: only the final scan does)",
             ENTRYPOINT, "    submission_id = submission_id_for(run_id, settings.job_namespace, attempt)\n",
             '    submission_id = f"{submission_id_for(run_id, settings.job_namespace, attempt)}-'
             '{settings.secret_key}"\n',
             (ONE_RUN,)),
    Mutation("database_url_in_job_log", "the database URL never reaches a job's log",
             ENTRYPOINT, "    secrets = settings.secret_values()\n",
             "    secrets = settings.secret_values()\n"
             "    print(settings.database.url.get_secret_value(), flush=True)\n",
             (ONE_RUN,)),
    Mutation("sql_guard_off", "the sql transformation cannot reach the node (reflection, paths, programs)",
             "syncmaster_ray/handlers/sql_guard.py", "    check_query(spark, query)\n    df.createOrReplace",
             "    df.createOrReplace",
             ("tests/integration/test_bad_input.py::test_bad_input_fails_the_run_with_its_specific_reason"
              "[sql reads the node]",)),
    Mutation("reflection_allowed", "Java reflection is refused by name, though it is a built-in function",
             "syncmaster_ray/handlers/sql_guard.py", 'frozenset({"reflect", "java_method", "try_reflect"})',
             "frozenset()", ("tests/integration/test_sql_guard.py",)),
    Mutation("mysql_local_infile_allowed", "a hostile MySQL server gets no file of the node (LOAD DATA LOCAL)",
             "syncmaster_ray/handlers/mysql.py", '    forced_params = {"allowLocalInfile": "false", ',
             "    forced_params = {",
             ("tests/integration/test_bad_input.py::test_bad_input_fails_the_run_with_its_specific_reason"
              "[hostile MySQL server]",
              "tests/unit/test_handlers_db.py::test_mysql_local_infile_and_deserialization_stay_off_whatever_the_params_say")),
)


def apply(mutation: Mutation) -> str:
    """Edit the file; returns its original text."""
    path = ROOT / mutation.path
    original = path.read_text()
    if original.count(mutation.old) != 1:
        raise SystemExit(f"{mutation.name}: the text to replace occurs {original.count(mutation.old)} times "
                         f"in {mutation.path} (the code changed: update the mutation)")
    path.write_text(original.replace(mutation.old, mutation.new))
    return original


def run(mutation: Mutation) -> tuple[bool, float]:
    """(killed, seconds): whether the tests failed under the mutation."""
    original = apply(mutation)
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "", "-p", "no:cacheprovider",
                                 *mutation.tests], cwd=ROOT, capture_output=True, text=True)
    finally:
        (ROOT / mutation.path).write_text(original)
    log = ROOT / ".mutations" / f"{mutation.name}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    return result.returncode == 1, time.monotonic() - started  # 1: tests failed (not a usage or collection error)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    if args.list:
        for mutation in chosen:
            print(f"{mutation.name}: breaks '{mutation.promise}'; must fail: {', '.join(mutation.tests)}")
        return 0
    survived = 0
    for mutation in chosen:
        killed, seconds = run(mutation)
        survived += not killed
        print(f"{'KILLED  ' if killed else 'SURVIVED'} {mutation.name} ({seconds:.0f} s; "
              f".mutations/{mutation.name}.log)", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
