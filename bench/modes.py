"""The bench's modes: how users run transfers, each measured our way and the stock worker's way in one bench run.

- ``cold``: the first run after the cluster (and the worker) started;
- ``back_to_back``: warm runs sent one after the other with no idle time between them;
- ``spaced``: warm runs with idle time before each (a standby has time to be ready);
- ``burst``: small transfers posted at once (the stock worker runs two at a time: its prefork pool);
- ``big``: one run of a big table, with the ``COPY`` pipe on the same rows.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from bench.copy_floor import copy_pipe
from bench.ways import Way

console = Console()
SOURCE, BURST_SOURCE, BIG_SOURCE = "public.demo_source", "public.burst_source", "public.big_source"


@dataclass
class Bench:
    """What every mode needs: both ways, and the database of the source tables."""

    ours: Way
    stock: Way
    data_url: str


def sources(burst_size: int) -> dict[str, str]:
    """Transfer name -> source table: ``main``, ``big`` and ``burst<i>``."""
    return {"main": SOURCE, "big": BIG_SOURCE, **{f"burst{i}": BURST_SOURCE for i in range(burst_size)}}


def cold(bench: Bench) -> dict[str, Any]:
    console.print("cold: the first run of ours, then the first of the stock worker ...")
    return {"ours": [bench.ours.run("main")], "stock": [bench.stock.run("main")]}


def back_to_back(bench: Bench, runs: int) -> dict[str, Any]:
    """One unmeasured warm-up run each, then ``runs`` runs each with no wait between them."""
    results: dict[str, Any] = {}
    for way in (bench.ours, bench.stock):
        console.print(f"back to back: 1 + {runs} runs, {way.name} ...")
        results[way.name] = [way.run("main") for _ in range(runs + 1)][1:]
    console.print("COPY pipe ...")
    results["copy_seconds"] = [copy_pipe(bench.data_url, SOURCE, "public.copy_target") for _ in range(runs)]
    return results


def spaced(bench: Bench, runs: int, idle: float) -> dict[str, Any]:
    """``idle`` seconds of nothing before each run, ours and the stock worker in turn."""
    results: dict[str, Any] = {"ours": [], "stock": [], "idle_seconds": idle}
    for index in range(runs):
        for way in (bench.ours, bench.stock):
            console.print(f"spaced {index + 1}/{runs}: {idle:.0f} s idle, then {way.name} ...")
            time.sleep(idle)
            results[way.name].append(way.run("main"))
    return results


def burst(bench: Bench, size: int) -> dict[str, Any]:
    names = [f"burst{i}" for i in range(size)]
    console.print(f"burst: {size} small transfers posted at once, ours, then the stock worker ...")
    return {"ours": bench.ours.burst(names), "stock": bench.stock.burst(names)}


def big(bench: Bench) -> dict[str, Any]:
    console.print("big: one run of ours, one of the stock worker, one COPY pipe ...")
    return {"ours": [bench.ours.run("big")], "stock": [bench.stock.run("big")],
            "copy_seconds": [copy_pipe(bench.data_url, BIG_SOURCE, "public.copy_big_target")]}


def median(samples: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(sample[key] for sample in samples), 3)
