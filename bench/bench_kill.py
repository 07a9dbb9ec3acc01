"""Kill-switch latency on the running default stack: from `ctl kill` sent to the reply received.

    client ──ZeroMQ──▶ control ──cmd ring──▶ harness: KILL → a CancelOrder per open order into the
    orders ring → CONTROL_REPLY into the reply ring ──▶ control ──ZeroMQ──▶ client

The harness writes every cancel into the orders ring before it writes the reply (same input), so
the reply time bounds "send → last cancel dispatched" from above; in harness terms the cancels go
out while the kill command itself is processed: 0 further inputs (asserted in
tests/integration/test_stack_control_e2e.py). Each round: wait for resting orders, kill, reset,
enable.

    python bench/bench_kill.py [--rounds 30]

Prints a table and writes bench/results/kill.json.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.control.client import ControlClient  # noqa: E402
from livestack.node import config  # noqa: E402
from livestack.node.supervisor import Supervisor  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    cfg = config.validate({"session": {"records_dir": tempfile.mkdtemp(prefix="ls-kill-"), "status_interval_s": 0.0}})
    sup = Supervisor(cfg, out=io.StringIO())
    sup.start()
    rtts, canceled = [], []
    try:
        c = ControlClient(sup.control_endpoint, timeout=10)
        for _ in range(args.rounds):
            deadline = time.monotonic() + 30
            while not [o for o in sup.status().get("telemetry", {}).get("orders", [])
                       if o["state"] in ("ACCEPTED", "PARTIALLY_FILLED")]:
                if time.monotonic() > deadline or not sup.poll():
                    raise SystemExit("no resting orders to kill")
                time.sleep(0.02)
            t0 = time.perf_counter_ns()
            r = c.kill()
            rtts.append(time.perf_counter_ns() - t0)
            canceled.append(r["result"]["canceled"])
            c.kill_reset()
            c.enable()
        c.close()
    finally:
        sup.stop()
    ns = np.array(rtts)
    q = common.percentiles(ns)
    print(f"Kill switch on the default stack (harness pinned on CPU {cfg['cpu']['harness']}), {args.rounds} kills, "
          f"{np.mean(canceled):.1f} open orders canceled per kill:")
    print(common.table([["ctl kill send -> reply (all cancels already in the orders ring)",
                         f"{q['p50_ns'] / 1e3:.0f}", f"{q['p99_ns'] / 1e3:.0f}", f"{q['max_ns'] / 1e3:.0f}"]],
                       ["path", "p50 us", "p99 us", "max us"]))
    print("harness inputs between reading the kill and the last cancel: 0 (same input)")
    print("wrote", common.write_result("kill", {"rounds": args.rounds, "canceled_per_kill": canceled, **q}))


if __name__ == "__main__":
    main()
