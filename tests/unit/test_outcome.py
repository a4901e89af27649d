"""``syncmaster_ray.outcome``: any exception -> (code, reason), one line, specific and secret-free."""

from __future__ import annotations

import pytest

from syncmaster_ray.errors import (
    ConfigError,
    CredentialsError,
    InvalidParamsError,
    JobLostError,
    ResourcesUnavailableError,
    RunStopped,
    SourceError,
    SubmitError,
    SyncmasterRayError,
    TargetError,
)
from syncmaster_ray.outcome import REASON_MAX_CHARS, classify, short_error

PY4J_TEXT = (
    "An error occurred while calling o123.load.\n"
    ': org.postgresql.util.PSQLException: ERROR: relation "public.x" does not exist\n'
    "  Position: 15\n"
    "\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2725)\n"
    "\tat org.postgresql.core.v3.QueryExecutorImpl.processResults(QueryExecutorImpl.java:2412)\n"
    "\tat org.postgresql.core.v3.QueryExecutorImpl.execute(QueryExecutorImpl.java:371)\n"
    "\tat org.apache.spark.sql.execution.datasources.jdbc.JDBCRDD$.resolveTable(JDBCRDD.scala:61)\n"
    "\tat java.base/java.lang.Thread.run(Thread.java:840)\n"
)


# A Python task that failed on an executor, as the driver gets it (shortened from a real run's).
PYTHON_TASK_TEXT = (
    "An error occurred while calling z:org.apache.spark.api.python.PythonRDD.collectAndServe.\n"
    ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 2.0 failed 4 times, most "
    "recent failure: Lost task 0.3 in stage 2.0 (TID 5) (192.0.2.2 executor 0): "
    "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
    '  File "/venv/lib/python3.11/site-packages/pyspark/worker.py", line 1247, in main\n'
    "    process()\n"
    "ValueError: an earlier error, handled\n"
    "\n"
    "During handling of the above exception, another exception occurred:\n"
    "\n"
    "Traceback (most recent call last):\n"
    '  File "/venv/lib/python3.11/site-packages/syncmaster_ray/handlers/pg_copy_pipe.py", line 206, in read\n'
    '    raise SourceError(f"reading the source with COPY failed: {error}")\n'
    "syncmaster_ray.errors.SourceError: reading the source with COPY failed: ERROR:  division by zero\n"
    "\n"
    "\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(PythonRunner.scala:572)\n"
    "\tat java.base/java.lang.Thread.run(Thread.java:840)\n"
    "Caused by: org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
)


class Py4JJavaError(Exception):
    """Shaped like py4j.protocol.Py4JJavaError: str() is the whole Java trace."""


def test_py4j_error_gives_the_java_exception_line():
    assert short_error(Py4JJavaError(PY4J_TEXT)) == 'PSQLException: ERROR: relation "public.x" does not exist'


def test_py4j_error_classified_as_internal_with_the_java_line():
    code, reason = classify(Py4JJavaError(PY4J_TEXT))
    assert code == "internal"
    assert reason == 'unexpected error: PSQLException: ERROR: relation "public.x" does not exist'
    assert "\n" not in reason
    assert "o123" not in reason
    assert "QueryExecutorImpl" not in reason


def test_a_python_task_failure_gives_the_error_its_traceback_ends_with():
    assert short_error(Py4JJavaError(PYTHON_TASK_TEXT)) == (
        "SparkException: Job aborted due to stage failure: Task 0 in stage 2.0 failed 4 times, most recent failure: "
        "Lost task 0.3 in stage 2.0 (TID 5) (192.0.2.2 executor 0): org.apache.spark.api.python.PythonException: "
        "SourceError: reading the source with COPY failed: ERROR:  division by zero"
    )


def test_a_traceback_without_an_error_line_is_left_as_it_was():
    text = "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n\tat x.y(Z.java:1)\n"
    assert short_error(Py4JJavaError(text)) == "PythonException: Traceback (most recent call last):"


def test_py4j_prefix_line_is_skipped_even_if_it_looks_like_an_error():
    text = "py4j.protocol.Py4JJavaError: An error occurred while calling o45.save.\n: java.sql.SQLException: boom"
    assert short_error(Py4JJavaError(text)) == "SQLException: boom"


def test_caused_by_chain_takes_the_first_exception_line():
    text = (
        "An error occurred while calling o9.load.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure\n"
        "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2856)\n"
        "Caused by: java.net.ConnectException: Connection refused\n"
    )
    assert short_error(Py4JJavaError(text)) == "SparkException: Job aborted due to stage failure"


def test_plain_python_exception_keeps_its_class_and_message():
    assert short_error(ValueError("bad value")) == "ValueError: bad value"
    assert short_error(ZeroDivisionError("division by zero")) == "ZeroDivisionError: division by zero"


def test_multiline_non_java_message_uses_first_non_blank_line():
    assert short_error(RuntimeError("\n\n  first line  \nsecond line")) == "RuntimeError: first line"


def test_empty_message_uses_class_name():
    assert short_error(RuntimeError()) == "RuntimeError: RuntimeError"


@pytest.mark.parametrize(
    "exc",
    [
        ConfigError("SYNCMASTER__X is not set"),
        CredentialsError("cannot decrypt"),
        InvalidParamsError("invalid resources: x"),
        SourceError("reading failed"),
        TargetError("writing failed"),
        SubmitError("refused"),
        JobLostError("gone"),
        ResourcesUnavailableError("too big"),
        RunStopped("stopped"),
    ],
)
def test_our_errors_keep_their_code_and_reason(exc):
    code, reason = classify(exc)
    assert code == exc.code
    assert code != "internal"
    assert reason == exc.reason


def test_error_codes_are_distinct():
    classes = [ConfigError, CredentialsError, InvalidParamsError, SourceError, TargetError, SubmitError,
               JobLostError, ResourcesUnavailableError, RunStopped]
    assert len({cls.code for cls in classes}) == len(classes)
    assert SyncmasterRayError("x").code == "internal"


@pytest.mark.parametrize("exc", [KeyError("k"), RuntimeError("r"), OSError("o"), KeyboardInterrupt()])
def test_unknown_exceptions_are_internal(exc):
    code, reason = classify(exc)
    assert code == "internal"
    assert reason.startswith("unexpected error: ")
    assert type(exc).__name__ in reason


def test_our_multiline_reason_is_joined_into_one_line():
    _, reason = classify(SourceError("line one\n\tline two\r\n   line three"))
    assert reason == "line one line two line three"


def test_reason_is_capped():
    _, reason = classify(SourceError("x" * 5000))
    assert len(reason) == REASON_MAX_CHARS == 1000
    _, reason = classify(RuntimeError("y" * 5000))
    assert len(reason) == REASON_MAX_CHARS


def test_reason_masks_url_password_pair_and_literal_secrets():
    exc = SourceError(
        "cannot connect to postgresql://etl:UrlPass123@db:5432/x with password=PairPass456; token LiteralTok789"
    )
    _, reason = classify(exc, secrets=["LiteralTok789"])
    assert "UrlPass123" not in reason
    assert "PairPass456" not in reason
    assert "LiteralTok789" not in reason
    assert reason == "cannot connect to postgresql://etl:***@db:5432/x with password=***; token ***"


def test_unknown_exception_reason_is_redacted():
    exc = Py4JJavaError(
        "An error occurred while calling o1.load.\n"
        ": org.postgresql.util.PSQLException: FATAL: password authentication failed for user \"etl\" "
        "(url jdbc:postgresql://etl:S3cret!@db:5432/x)\n\tat org.postgresql.Driver.connect(Driver.java:1)"
    )
    code, reason = classify(exc, secrets=("S3cret!",))
    assert code == "internal"
    assert "S3cret" not in reason
    assert reason.startswith("unexpected error: PSQLException: FATAL: password authentication failed")


def test_secret_spanning_a_newline_is_masked_after_joining():
    # Reasons are joined into one line before redaction, so a secret is matched as it will be stored.
    _, reason = classify(SourceError("key is\nabc def"), secrets=["is abc"])
    assert reason == "key *** def"


def test_error_codes_keep_the_text_stored_in_run_records():
    """The values are what SyncMaster's UI and earlier rows show: renaming one is a data migration."""
    from syncmaster_ray.errors import ErrorCode, Phase

    assert sorted(ErrorCode) == sorted([
        "internal", "config", "run_state", "transfer_spec", "credentials", "unsupported_connection_type",
        "invalid_params", "forbidden_sql", "source", "target", "cluster", "submit", "job_lost", "actor_died",
        "resources_unavailable", "stopped", "timed_out", "stopped_externally", "job_failed",
    ])
    assert sorted(Phase) == sorted(["waiting_for_worker", "waiting_for_capacity", "transferring", "ended"])


def test_every_error_class_carries_an_error_code():
    from syncmaster_ray.errors import ErrorCode

    def subclasses(cls: type) -> list[type]:
        return [cls, *(sub for direct in cls.__subclasses__() for sub in subclasses(direct))]

    for cls in subclasses(SyncmasterRayError):
        assert isinstance(cls.code, ErrorCode), cls


def test_run_outcome_of_a_failure_is_classified_and_of_a_success_has_no_code():
    from syncmaster_ray.outcome import RunOutcome

    failed = RunOutcome.failed(SourceError("cannot read postgresql://u:hunter2@db/x"), ["hunter2"])
    assert not failed.ok and failed.code == "source" and "hunter2" not in failed.reason
    done = RunOutcome(metrics={"rows_written": 3})
    assert done.ok and done.code is None and done.reason is None and done.log == []
