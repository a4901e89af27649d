"""Issue 15's goals, computed from one bench result; the README's table is rendered from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.memory import MiB
from bench.modes import median

MB = 1_000_000


@dataclass(frozen=True)
class Goal:
    measure: str
    limit: float
    value: float
    detail: str

    @property
    def met(self) -> bool:
        return self.value <= self.limit


def goals(result: dict[str, Any]) -> list[Goal]:
    """Each goal whose mode the result holds."""
    modes, found = result["modes"], []
    for mode, check in _CHECKS:
        if all(name in modes for name in mode):
            found.extend(check(modes, result))
    return found


def _ratio(ours: float, stock: float, unit: str = "s") -> tuple[float, str]:
    return round(ours / stock, 2), f"{ours:.1f} {unit} / {stock:.1f} {unit}"


def _wall_ratio(mode: str, measure: str, limit: float) -> Any:
    def check(modes: dict[str, Any], result: dict[str, Any]) -> list[Goal]:
        value, detail = _ratio(median(modes[mode]["ours"], "wall"), median(modes[mode]["stock"], "wall"))
        return [Goal(measure, limit, value, detail)]
    return check


def _back_to_back(modes: dict[str, Any], result: dict[str, Any]) -> list[Goal]:
    runs = modes["back_to_back"]
    cpu, cpu_detail = _ratio(median(runs["ours"], "cpu"), median(runs["stock"], "cpu"), "CPU s")
    memory = max(sample["cluster_above_idle_mib"] for sample in runs["ours"]) * MiB / MB
    return [Goal("CPU seconds per run, warm, back to back, ours / stock", 1.0, cpu, cpu_detail),
            Goal("memory of a run above the idle cluster (MB)", 1200, round(memory), f"peak of {len(runs['ours'])}")]


def _burst(modes: dict[str, Any], result: dict[str, Any]) -> list[Goal]:
    runs = modes["burst"]["ours"]
    worker = max(sample["worker_peak_mib"] for sample in runs) * MiB / MB
    return [Goal("Celery worker RSS (MB)", 200, round(worker), f"{len(runs)} runs at once")]


def _big(modes: dict[str, Any], result: dict[str, Any]) -> list[Goal]:
    big = modes["big"]
    phases = big["ours"][0]["phases"]
    data = phases["read_plan"] + phases["copy"]
    return [Goal(f"{result['big_rows']:,} rows, data phase / COPY pipe", 1.5,
                 round(data / big["copy_seconds"][0], 2), f"{data:.1f} s / {big['copy_seconds'][0]:.1f} s")]


def _linear(modes: dict[str, Any], result: dict[str, Any]) -> list[Goal]:
    big, small = modes["big"]["ours"][0]["wall"], median(modes["back_to_back"]["ours"], "wall")
    factor = result["big_rows"] / result["rows"]
    return [Goal(f"{result['big_rows']:,} / {result['rows']:,} rows, our time", round(1.1 * factor, 2),
                 round(big / small, 2), f"{big:.1f} s / {small:.1f} s")]


_CHECKS = [
    (("back_to_back",), _wall_ratio("back_to_back", "back to back, warm runs, ours / stock", 0.7)),
    (("back_to_back",), _back_to_back),
    (("spaced",), _wall_ratio("spaced", "with idle time before each run, ours / stock", 0.5)),
    (("cold",), _wall_ratio("cold", "the first run after the cluster starts, ours / stock", 1.0)),
    (("burst",), _wall_ratio("burst", "small transfers posted at once, ours / stock", 0.7)),
    (("burst",), _burst),
    (("big",), _wall_ratio("big", "big table, ours / stock", 0.5)),
    (("big",), _big),
    (("big", "back_to_back"), _linear),
]


def markdown(result: dict[str, Any]) -> str:
    """The README's table: one line per goal, with the result's date and shape."""
    lines = [f"Measured {result['date'][:10]} on this machine ({result['machine']['cpus']} cores); "
             f"{result['rows']:,} rows (big: {result['big_rows']:,}), burst of {result['burst_size']} x "
             f"{result['burst_rows']:,} rows; code defaults{_settings(result)}.", "",
             "| measure | goal | measured | detail | met |", "|---|---|---|---|---|"]
    for goal in goals(result):
        lines.append(f"| {goal.measure} | <= {goal.limit:g} | {goal.value:g} | {goal.detail} | "
                     f"{'yes' if goal.met else '**no**'} |")
    return "\n".join(lines)


def _settings(result: dict[str, Any]) -> str:
    changed = result.get("settings") or {}
    return "".join(f", {key}={value}" for key, value in sorted(changed.items()))
