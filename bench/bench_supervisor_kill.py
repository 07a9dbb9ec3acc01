"""Supervisor SIGKILL, repeated: do the children stop in order and lose nothing? (issue 12.7)

Each round runs ``livestack run`` (sim market + sim venue + market maker + control + writer)
under a child subreaper (tests/integration/reaper.py), waits for resting orders, SIGKILLs the
supervisor and waits for every child to exit by itself, then checks the session file:

    reaper ── livestack run (supervisor) ──┬─ harness ─┬─ venue ─┬─ control ─┬─ writer
       ▲           SIGKILL here            └───────────┴─────────┴───────────┘
       └── re-parented children, reaped one by one; the reaper exits when none is left

    python bench/bench_supervisor_kill.py [--rounds 10]

Prints a table per round and writes bench/results/supervisor_kill.json. Figures per round:
seconds from the kill to the last child's exit, children that did not exit 0, records in the file
and the harness's last record seq (missing tail = the difference), orders not terminal in the
file, shared-memory segments of the session left behind.
"""

from __future__ import annotations

import argparse
import glob
import os
import pathlib
import signal
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402

from livestack.ipc import shm  # noqa: E402
from livestack.records import open_session  # noqa: E402
from livestack.records.cli import summarize  # noqa: E402
from tests.integration.test_supervisor_death import TERMINAL, Stack, _telemetry  # noqa: E402
from tests.waiting import wait_for  # noqa: E402


def one_round(tmp: pathlib.Path) -> dict:
    s = Stack(tmp)
    try:
        wait_for(s.started, 60, "the session to start", poll_s=0.05)
        tel = _telemetry(s.session)
        wait_for(lambda: tel.gauge("open_orders") > 0 and tel.gauge("rseq") > 2000, 60, "resting orders", 0.05)
        resting = tel.gauge("open_orders")
        del tel
        os.kill(s.supervisor, signal.SIGKILL)
        t0 = time.monotonic()
        rc = s.proc.wait(timeout=90)
        exit_s = time.monotonic() - t0
        s.reader.join(timeout=10)
        exits = s.exits()
        exits.pop(s.supervisor, None)
        [path] = glob.glob(str(s.records / "*" / f"{s.session}.h5"))
        d = summarize(path)
        with open_session(path) as f:
            last = f["order_state"].groupby("client_order_id").state.last()
            final = str(f["trading_state"].state.iloc[-1])
        return {"exit_s": round(exit_s, 2), "reaper_rc": rc, "children": len(exits),
                "children_not_clean": sum(st != 0 for st in exits.values()), "resting_at_kill": resting,
                "records": d["seq"]["records"], "contiguous": d["seq"]["contiguous"],
                "harness_last_seq": d["end"]["harness_last_seq"], "missing_tail": d["end"]["missing_tail"],
                "orders": int(len(last)), "orders_not_terminal": int((~last.isin(TERMINAL)).sum()),
                "final_state": final, "shm_left": len(shm.list_segments(s.session))}
    finally:
        s.kill()
        if s.session:
            shm.remove_session(s.session)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    rows = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="ls-supkill-") as tmp:
            r = one_round(pathlib.Path(tmp))
        rows.append(r)
        print(f"round {i + 1}: {r}", flush=True)
    lost = sum(r["missing_tail"] for r in rows) + sum(not r["contiguous"] for r in rows)
    print(common.table([[i + 1, r["exit_s"], r["children_not_clean"], r["records"], r["harness_last_seq"],
                         r["missing_tail"], r["orders_not_terminal"], r["final_state"], r["shm_left"]]
                        for i, r in enumerate(rows)],
                       ["round", "exit s", "unclean", "records", "harness last", "missing", "open orders",
                        "final", "shm left"]))
    print(f"{args.rounds} supervisor SIGKILLs: records lost {lost}, unclean exits "
          f"{sum(r['children_not_clean'] for r in rows)}, orders left open "
          f"{sum(r['orders_not_terminal'] for r in rows)}, shm segments left {sum(r['shm_left'] for r in rows)}, "
          f"slowest stop {max(r['exit_s'] for r in rows):.1f} s")
    print("wrote", common.write_result("supervisor_kill", {"rounds": rows, "records_lost": lost}))


if __name__ == "__main__":
    main()
