"""Timing helpers shared by the benchmark scripts (imported from the scripts' own folder).

On a shared machine the load changes from one minute to the next, so systems compared with each
other are timed in *interleaved* rounds (A, B, A, B, ...) inside one process: a slow period hits
both alike and their ratio survives it, where two back-to-back blocks of timings would not.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable


def interleaved(fns: dict[str, Callable[[], object]], warmup: int, steps: int, rounds: int) -> dict[str, dict]:
    """Times every function of `fns` in alternating rounds.

    Each function gets one first call (tracing / compilation, reported apart), `warmup` untimed
    calls, then `rounds` rounds of `steps` timed calls; the rounds of the different functions
    alternate. Every function must end with a host sync (e.g. return NumPy values).

    Returns: for each name, `first_call_s`, `median_s` (median of all timed calls) and
    `round_medians_s`.
    """
    results = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn()
        results[name] = {"first_call_s": round(time.perf_counter() - start, 2), "times": [], "round_medians_s": []}
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            results[name]["times"] += times
            results[name]["round_medians_s"].append(round(statistics.median(times), 5))
    for result in results.values():
        result["median_s"] = statistics.median(result.pop("times"))
    return results


def load() -> list[float]:
    """The 1-minute load average (and 5, 15), to print next to each figure."""
    return [round(v, 1) for v in os.getloadavg()]


def run_per_backend(script: str, backends: list[str]) -> list[dict]:
    """Runs `script --backend B` once per backend in a fresh process (Keras picks its backend at
    import), echoes its output, and returns the JSON records it printed, one per line."""
    records = []
    for backend in backends:
        print(f"== {backend} ==", flush=True)
        command = [sys.executable, script, "--backend", backend, *sys.argv[1:]]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith("{"):
                records.append(json.loads(line))
        process.wait()
    return records


def print_ratio_table(records: list[dict], rate: str, unit: str) -> None:
    """One Markdown row per (backend, jit, measure): our `rate` field, keras-hub's and their ratio."""
    rows = {}
    for r in records:
        rows.setdefault((r["backend"], str(r["jit_compile"]), r["measure"]), {})[r["system"]] = r
    print(f"\n| backend | jit | measure | keras_ptft {unit} | keras-hub {unit} | ratio |")
    print("|---|---|---|---|---|---|")
    for (backend, jit, measure), row in rows.items():
        ours, hub = row.get("keras_ptft"), row.get("keras_hub")
        ratio = f"{ours[rate] / hub[rate]:.2f}x" if ours and hub else "-"
        print(f"| {backend} | {jit} | {measure} | {ours[rate] if ours else '-'} | "
              f"{hub[rate] if hub else '-'} | {ratio} |")
