"""Helpers shared by the benchmarks: machine description, percentile tables, JSON results."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import subprocess
import time

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)), "python": platform.python_version(),
            "kernel": platform.release(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def percentiles(ns: np.ndarray) -> dict:
    q = np.percentile(ns, [50, 90, 99, 99.9])
    return {"p50_ns": float(q[0]), "p90_ns": float(q[1]), "p99_ns": float(q[2]), "p99_9_ns": float(q[3]),
            "max_ns": float(ns.max()), "samples": int(ns.size)}


def write_result(name: str, payload: dict) -> pathlib.Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path


def compile_c(src: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", str(src), "-o", str(out)], check=True)
    return out


def pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def table(rows: list[list], headers: list[str]) -> str:
    cols = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cols[1:]]
    return "\n".join(lines)
