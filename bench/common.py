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


_HICCUP = None  # the compiled bench/c/hiccup.c, built once per process


def hiccup_floor(cpus, duration_ns):
    """Run bench/c/hiccup.c pinned on each CPU at once for duration_ns; the per-CPU gap counts."""
    global _HICCUP
    import json
    import subprocess
    import tempfile

    if _HICCUP is None:
        _HICCUP = compile_c(pathlib.Path(__file__).resolve().parent / "c" / "hiccup.c",
                            pathlib.Path(tempfile.mkdtemp(prefix="lsbench-")) / "hiccup")
    ps = [subprocess.Popen([str(_HICCUP), str(c), str(int(duration_ns))], stdout=subprocess.PIPE, text=True)
          for c in cpus]
    out = [json.loads(p.communicate(timeout=duration_ns / 1e9 + 60)[0]) for p in ps]
    return {"per_cpu": out, "over_1us": sum(o["over_1us"] for o in out), "over_10us": sum(o["over_10us"] for o in out),
            "max_ns": max(o["max_ns"] for o in out),
            "lost_fraction": max(o["lost_ns"] / max(1, o["duration_ns"]) for o in out)}
