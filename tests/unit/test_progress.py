"""The copy's progress (``job/progress.py``): figures from a row count, and the sampling thread."""

from __future__ import annotations

import threading

from syncmaster_ray.job.progress import Progress, reporting
from syncmaster_ray.status import progress_text


def test_percent_and_eta_come_from_the_estimate_and_percent_waits_for_the_end():
    sample = Progress(rows=250_000, seconds=10, total=1_000_000)

    assert (sample.rows_per_second, sample.percent, sample.eta_seconds) == (25_000, 25.0, 30.0)
    assert Progress(rows=1_200_000, seconds=10, total=1_000_000).percent == 99.0  # an estimate ran over
    assert Progress(rows=1_200_000, seconds=10, total=1_000_000).eta_seconds == 0


def test_without_an_estimate_there_is_no_percent_or_eta():
    sample = Progress(rows=5000, seconds=2)

    assert (sample.percent, sample.eta_seconds) == (None, None)
    assert progress_text(sample.as_record()) == "5,000 rows in 2 s (2,500 rows/s)"


def test_the_text_names_rows_rate_percent_and_time_to_go():
    text = progress_text(Progress(rows=250_000, seconds=10, total=1_000_000).as_record())

    assert text == "250,000 rows in 10 s (25,000 rows/s), 25% of about 1,000,000, about 30 s to go"


def test_samples_are_published_while_the_block_runs_and_a_failing_count_is_skipped():
    counts = iter([None, 10, 10, RuntimeError("db away"), 30, 40, 50, 60, 70, 80])
    published, done = [], threading.Event()

    def count():
        value = next(counts)
        if isinstance(value, Exception):
            raise value
        return value

    def publish(sample):
        published.append(sample.rows)
        if sample.rows >= 40:
            done.set()

    with reporting(count, None, publish, interval=0.01):
        assert done.wait(5)

    # None and a repeated count publish nothing; the failed sample is skipped, the next goes on.
    assert published[:3] == [10, 30, 40]
