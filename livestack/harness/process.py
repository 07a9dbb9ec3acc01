"""The harness process: pin, optionally SCHED_FIFO + mlockall, attach the session's rings, build the
core and strategy from config, and run the loop until SIGTERM/SIGINT.

Everything here runs before or after the loop; the loop itself (``loop.pyx``) does no I/O.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

from livestack.ipc import Ring
from livestack.node import config as cfgmod
from livestack.node import markets

MCL_CURRENT, MCL_FUTURE = 1, 2
log = logging.getLogger(__name__)


def warn(msg: str) -> None:
    log.warning(msg)


def realtime_setup(cpu: int, sched_fifo: bool, mlockall: bool) -> dict:
    """Pin to ``cpu``; try SCHED_FIFO and mlockall when asked. Returns what took effect."""
    got = {"cpu": None, "sched_fifo": False, "mlockall": False}
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
        got["cpu"] = cpu
    if sched_fifo:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            got["sched_fifo"] = True
        except PermissionError:
            warn("SCHED_FIFO not permitted (needs CAP_SYS_NICE or an rtprio limit); running SCHED_OTHER")
    if mlockall:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
            warn(f"mlockall failed: {os.strerror(ctypes.get_errno())} (raise the memlock limit: ulimit -l)")
        else:
            got["mlockall"] = True
    return got


def build_core(cfg: dict):
    """The Core and strategy the config asks for (also used by replay)."""
    from livestack.core import Core
    from livestack.strategies import config as strategy_config
    from livestack.harness import recovery

    if cfg.get("strategies"):
        strategy = strategy_config.build_set(cfg["strategies"], cfgmod.instruments(cfg))
    else:
        strategy = strategy_config.build(cfg["strategy"], cfgmod.instruments(cfg))
    # book depth: per instrument ([[instruments]] book_depth, livestack.config.DEFAULT_BOOK_DEPTH);
    # BOOK_TOP records: harness.book_top_levels (a config from before it existed: 5)
    return Core(cfgmod.instruments(cfg), cfg["risk"], strategy,
                book_top_levels=int(cfg.get("harness", {}).get("book_top_levels", 5)),
                **recovery.core_kwargs(cfg))


def run_process(rings: dict, cfg: dict, telemetry_name: str | None = None, records_path: str | None = None,
                follower=None) -> None:
    """Entry point of the harness process (spawned by the supervisor).

    ``rings`` maps role -> segment name: ``md`` (list, one per feed), ``exec``, ``cmd``, ``orders``,
    ``records``, ``reply``, ``events``; with several venues ``venues``: a list of ``{"orders", "exec"}``
    in ``cfg["venues"]`` order (``exec`` / ``orders`` are then venue 0's). ``follower``: a warm
    standby taking over (``livestack.harness.standby``) passes its ``recovery.JournalFollower``,
    whose core already ran most of the journal.
    """
    from livestack.harness import loop

    loop.install_signal_handlers()
    h = cfg["harness"]
    realtime_setup(cfg["cpu"]["harness"], h["sched_fifo"], h["mlockall"])
    core = follower.core if follower is not None else build_core(cfg)
    # one producer and one consumer per ring: the harness consumes md/exec/cmd, produces the rest
    consume = lambda name: Ring.attach(name, timeout=10.0, role="consumer")  # noqa: E731
    produce = lambda name: Ring.attach(name, timeout=10.0, role="producer")  # noqa: E731
    telemetry = None
    if telemetry_name:
        from livestack.telemetry.block import TelemetryBlock

        telemetry = TelemetryBlock.attach(telemetry_name)
        if records_path is not None:
            telemetry.reclaim_dead_processes()  # a restarted harness: its predecessors' slots (issue 14)
    # several venues (issue 16): one exec/orders pair each, and the instrument -> venue table
    venues = rings.get("venues") or [{"exec": rings["exec"], "orders": rings["orders"]}]
    md_rings, cmd_ring = [consume(n) for n in rings["md"]], consume(rings["cmd"])
    exec_rings, orders_rings = [consume(v["exec"]) for v in venues], [produce(v["orders"]) for v in venues]
    records_ring = produce(rings["records"])
    routes = {i.id: markets.venue_index(cfg, i) for i in cfgmod.instruments(cfg)} if "venues" in cfg else {}
    restarted = records_path is not None and records_ring.tail > 0  # a previous harness wrote records
    if restarted:  # crash-only recovery (livestack/harness/recovery.py): the core from the journal
        from livestack.harness import recovery

        follower = recovery.rebuild(core, follower, records_ring, records_path, cfg, exec_rings + [cmd_ring] + md_rings)
    harness = loop.Harness(
        core, md_rings, exec_rings, cmd_ring, orders_rings, records_ring, produce(rings["reply"]), produce(rings["events"]),
        timer_interval_ns=int(h["timer_interval_ms"] * 1e6), batch=h["batch"], telemetry=telemetry, routes=routes)
    if restarted:
        from livestack.harness import recovery
        from livestack.schema import ControlCmdType

        harness.resume(follower.applied)
        harness.inject_command(int(ControlCmdType.RECOVER), follower.recovers + 1,
                               sum(int(r.tail) for r in orders_rings),  # orders dispatched: one ring each
                               10.0)
    harness.run(cfg["session"]["duration_s"], h["drain_timeout_s"], h["cancel_on_stop"])
    from livestack.strategies import config as strategy_config  # sdk: keep the first strategy traceback

    err = strategy_config.save_errors(core, cfg["session"]["records_dir"], telemetry_name)
    if err:
        print(f"harness: strategy {err['strategy']} raised {err['errors']:,} time(s)"
              f"{' and was disabled' if err['disabled'] else ''}; the first:\n{err['first_traceback']}",
              file=sys.stderr, flush=True)
    c = harness.counters()
    log.info(f"stopped after {c['inputs']:,} inputs (md {c['md']:,}, exec {c['execs']:,}, "
          f"cmd {c['cmds']:,}, timers {c['timers']:,}), {c['orders_sent']:,} orders, "
          f"{c['records_out']:,} records"
          + (f"; halted for the records disk ({c['disk_halts']} DISK_HALT inputs)" if c.get("disk_halts") else ""))
