"""Chaos run (issue 14): a whole stack under a seeded random SIGKILL loop, then checks.

Stands in for nothing: it drives the real ``Supervisor`` (real processes, shared memory, HDF5)
and SIGKILLs its children -- the harness most often, the venue, the writer and the control
process too -- at random instants. Used by ``tests/integration/test_recovery_chaos.py`` (short,
seeded) and ``bench/bench_chaos.py`` (long, reports kill -> ACTIVE latencies).

What it checks once the session stopped (:func:`check_session`):

* 0 duplicate orders: every NewOrder client_order_id in the order stream is unique;
* 0 lost or double-applied fills: every fill the venue sent reached the journal (the exec ring
  was fully consumed), each journaled fill's exec id is applied exactly once (FILL records);
* final positions in the records equal the sum of the venue's fills;
* the record stream is contiguous (seq 1..N over every dataset) across the restarts;
* ``livestack replay --verify`` passes over the whole file.
"""

from __future__ import annotations

import io
import logging
import os
import random
import signal
import time
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

RECOVERY_CAUSE = 6   # TRADING_STATE.cause of the changes recovery makes (core/recovery.pxd)
RECOVERING = 3


@dataclass
class ChaosResult:
    journal_inputs: int = 0                          # journaled inputs at the end (a restart re-runs them all)
    kills: dict = field(default_factory=dict)        # process name -> kills
    recover_ms: list = field(default_factory=list)   # harness kill -> recovery end seen in the file (wall clock)
    via_standby: list = field(default_factory=list)  # per harness kill: a warm standby took over (else a fresh harness)
    warm_at_kill: list = field(default_factory=list)  # per harness kill: a standby had run the whole journal when it came
    path: str = ""
    checks: dict = field(default_factory=dict)
    events: list = field(default_factory=list)


def _raw(path: str, name: str) -> np.ndarray:
    """A dataset of the live session file; empty while the file is not readable yet (not created,
    or the writer has not switched it to SWMR). Opened without the HDF5 file lock (the
    writer no longer takes HDF5's lock, so it is not needed; kept: it costs nothing)."""
    import h5py

    try:
        with h5py.File(path, "r", libver="latest", swmr=True, locking=False) as f:
            return f[name][()] if name in f else np.zeros(0)
    except OSError:
        return np.zeros(0)


def recoveries_done(path: str) -> np.ndarray:
    """ts of every TRADING_STATE record that ended a recovery (cause 6, state not RECOVERING)."""
    ts = _raw(path, "trading_state")
    if not len(ts):
        return np.zeros(0, np.int64)
    sel = (ts["cause"] == RECOVERY_CAUSE) & (ts["state"] != RECOVERING)
    return ts["ts"][sel].astype(np.int64)


def stack_config(records_dir: str, extra: dict | None = None) -> dict:
    """The default simulated stack (or, with ``extra``, e.g. the FIX venue) for a chaos run."""
    from livestack.node import config

    raw = {
        "session": {"records_dir": records_dir, "status_interval_s": 0.0},
        "rings": {"records_capacity": 1 << 17, "md_capacity": 1 << 14},
        "writer": {"min_free_mb": 16.0, "flush_interval_ms": 20.0},
        "recovery": {"recover_timeout_s": 10.0},
    }
    raw.update(extra or {})
    return config.validate(raw)


def _wait(pred, timeout: float, what: str, sup=None, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if sup is not None and not sup.poll():
            raise RuntimeError(f"session ended while waiting for {what}: {'; '.join(sup.events[-5:])}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll_s)


def run_chaos(records_dir: str, kills: int, seed: int, *, gap_s=(0.3, 1.0), others_every: int = 4,
              recover_wait_s: float = 60.0, on_kill=None, extra_config: dict | None = None,
              on_gap=None, max_s: float | None = None, wait_standby: bool = False) -> ChaosResult:
    """Start a stack, SIGKILL ``kills`` times (seeded), stop it, check the file. The harness is
    the target except every ``others_every``-th kill, which hits the venue, writer, control or
    feed process when it has been up long enough not to count as a crash loop. ``extra_config``
    overrides parts of the stack config (the FIX venue); ``on_gap()`` runs between kills (e.g. a
    test exchange filling orders). ``max_s``: stop killing after this long (the kills done are
    in the result). ``wait_standby``: before each harness kill, wait (bounded) until a warm
    standby is ready, so every recovery is a takeover (else a kill may find none ready: the
    fresh-harness path)."""
    from livestack.ipc import Ring, shm
    from livestack.node.supervisor import QUICK_FAIL_S, Supervisor

    rng = random.Random(seed)
    res = ChaosResult()
    sup = Supervisor(stack_config(records_dir, extra_config), out=io.StringIO())
    exec_obs = None
    try:
        sup.start()
        res.path = sup.records_path
        exec_obs = Ring.attach(sup.rings["exec"], timeout=10.0)
        _wait(lambda: len(_raw(res.path, "order_cmd")) > 0, 90,
              "the first orders", sup)
        t_start = time.monotonic()
        for k in range(kills):
            if max_s is not None and time.monotonic() - t_start > max_s:
                break
            end = time.monotonic() + rng.uniform(*gap_s)
            while time.monotonic() < end:
                if not sup.poll():
                    raise RuntimeError("; ".join(sup.events[-5:]))
                if on_gap is not None:
                    on_gap()
                time.sleep(0.02)
            name = "harness"
            if others_every and k % others_every == others_every - 1:
                up = [n for n in ("venue", "writer", "control", "feed", "standby") if n in sup.procs and sup.procs[n].proc.is_alive()
                      and time.monotonic() - sup.procs[n].started > QUICK_FAIL_S + 1]
                if up:
                    name = rng.choice(up)
            if name == "harness" and wait_standby:
                _wait(lambda: _standby_ready(sup), 120, "a warm standby", sup)
            m = sup.procs[name]
            done_before = len(recoveries_done(res.path)) if name == "harness" else 0
            warm = name == "harness" and _standby_ready(sup)
            n_events = len(sup.events)
            t_kill = time.time_ns()
            os.kill(m.proc.pid, signal.SIGKILL)
            res.kills[name] = res.kills.get(name, 0) + 1
            if on_kill is not None:
                on_kill(k, name)
            if name == "harness":
                _wait(lambda: len(recoveries_done(res.path)) > done_before, recover_wait_s,
                      f"recovery after harness kill #{k}", sup, poll_s=0.01)
                # wall clock when the end of the recovery is seen in the file: an upper bound (the
                # writer's 20 ms flush and this poll on top). Not the record's ts: that is the
                # input's, here the venue's answer stamped with the venue's own clock.
                res.recover_ms.append((time.time_ns() - t_kill) / 1e6)
                res.via_standby.append(any("warm standby took over" in e for e in sup.events[n_events:]))
                res.warm_at_kill.append(warm)
            else:
                old = m.proc.pid
                _wait(lambda: m.proc.pid != old and m.proc.is_alive(), 30, f"{name} restart", sup)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            assert sup.poll(), "; ".join(sup.events[-5:])
            time.sleep(0.05)
        rc = sup.stop(timeout=30)
        res.events = list(sup.events)
        res.checks = check_session(res.path)
        res.checks["stop_rc"] = rc
        res.checks.update(_unconsumed_execs(exec_obs, res.path))
    finally:
        sup.stop(timeout=30)
        if exec_obs is not None:
            exec_obs.close()
        shm.remove_session(sup.session)
    return res


def _unconsumed_execs(exec_obs, path: str) -> dict:
    """Venue events left in the exec ring after the stop. The harness's drain ends once no order
    is open, so an answer the venue still owed (the cancel reject of an order that filled while
    its stop-cancel was on the way) can arrive after it; such an answer changes nothing. What
    must never be left: a fill, or an event for an order the records do not show ended."""
    from livestack.records import open_session
    from livestack.schema import DTYPES, ExecType, OrderState

    n = int(exec_obs.tail - exec_obs.head)
    out = {"exec_unconsumed": n, "exec_unconsumed_fills": 0, "exec_unconsumed_unexplained": 0}
    if not n:
        return out
    left = np.frombuffer(np.ascontiguousarray(exec_obs.view(n)).tobytes(), DTYPES["EXEC"])
    with open_session(path) as s:
        st = s.raw("order_state")
    final = dict(zip(st["client_order_id"].tolist(), st["state"].tolist()))  # rows in seq order: last wins
    ended = {int(x) for x in (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED,
                              OrderState.REPLACED, OrderState.UNKNOWN)}
    fills = np.isin(left["exec_type"], [int(ExecType.PARTIALLY_FILLED), int(ExecType.FILLED)])
    out["exec_unconsumed_fills"] = int(fills.sum())
    out["exec_unconsumed_unexplained"] = int(sum(1 for c, f in zip(left["client_order_id"].tolist(), fills.tolist())
                                                 if not f and final.get(c) not in ended))
    out["exec_unconsumed_types"] = sorted({ExecType(int(t)).name for t in left["exec_type"].tolist()})
    return out


def _standby_ready(sup) -> bool:
    from livestack.harness import standby

    return any(n.startswith("standby") and m.proc is not None and m.proc.is_alive()
               and standby.is_warm(sup.session, m.proc.pid) for n, m in sup.procs.items())


def check_session(path: str) -> dict:
    """The chaos invariants over a stopped session's file (see the module docstring)."""
    from livestack.records import open_session
    from livestack.records.replay import read_journal, replay
    from livestack.core.inputs import decode
    from livestack.schema import ExecType, OrderCmdType

    out = {}
    with open_session(path) as s:
        names = [n for n in s.datasets() if n != "journal"]
        seqs = [s.raw(n)["seq"].astype(np.uint64) for n in names if len(s.raw(n))]
        journal = s.raw("journal")
        if "row" not in (journal.dtype.names or ()):  # schema <= 3: the journal holds the inputs' copies;
            seqs.append(journal["seq"].astype(np.uint64))  # schema 4: the inputs are in their kinds' datasets
        orders = s.raw("order_cmd")
        fills = s.raw("fill")
        pos = s.raw("position")
    seq = np.sort(np.concatenate(seqs))
    out["records"] = int(len(seq))
    out["contiguous"] = bool(len(seq) and seq[0] == 1 and np.all(np.diff(seq) == 1))
    news = orders[orders["cmd"] == int(OrderCmdType.NEW)]["client_order_id"]
    out["new_orders"] = int(len(news))
    out["duplicate_orders"] = int(len(news) - len(np.unique(news)))
    _, journal = read_journal(path)
    ex = decode(journal, "EXEC")
    fl = ex[np.isin(ex["exec_type"], [int(ExecType.PARTIALLY_FILLED), int(ExecType.FILLED)])]
    ids = set(zip(fl["exec_id"].tolist(), fl["exec_id_hi"].tolist()))
    applied = list(zip(fills["exec_id"].tolist(), fills["exec_id_hi"].tolist()))
    out["venue_fills"] = len(ids)
    out["applied_fills"] = len(applied)
    out["double_fills"] = len(applied) - len(set(applied))
    out["lost_fills"] = len(ids - set(applied))
    venue_pos = {}
    for inst, side, q, eid, ehi in zip(fl["instrument"].tolist(), fl["side"].tolist(), fl["last_qty"].tolist(),
                                        fl["exec_id"].tolist(), fl["exec_id_hi"].tolist()):
        if (eid, ehi) in ids:
            ids.discard((eid, ehi))
            venue_pos[inst] = venue_pos.get(inst, 0) + (q if side == 1 else -q)
    rec_pos = {}
    for inst, net in zip(pos["instrument"].tolist(), pos["net_qty"].tolist()):
        rec_pos[inst] = net
    out["venue_positions"] = venue_pos
    out["record_positions"] = rec_pos
    out["positions_equal"] = all(rec_pos.get(i, 0) == v for i, v in venue_pos.items())
    r = replay(path, verify=True)
    out["replay_verified"] = bool(r.verified)
    out["journal_inputs"] = int(r.inputs)
    out["replay_divergence"] = r.divergence
    return out


class FixPeer:
    """The QuickFIX test exchange (``livestack.testing.fix_exchange``) as the chaos run's venue peer:
    ``config`` is the ``extra_config`` for a ``venue.kind = "fix"`` stack against it (``mass``: ask
    with OrderMassStatusRequest 35=AF and RequestForPositions 35=AN), ``fill_some`` the ``on_gap``
    that fills a random resting order half the time (seeded), ``sent`` the message types the
    exchange received. Use as a context manager (stops the exchange)."""

    def __init__(self, workdir: str, mass: bool = False, seed: int = 7, events_per_s: float = 5000.0):
        from livestack.testing.fix_exchange import ExchangeProcess

        self.ex = ExchangeProcess(os.path.join(workdir, "exchange"))
        self._rng = random.Random(seed)
        self._seen = 0
        self.config = {
            "control": {"enabled": False},
            "instruments": [{"id": 1, "symbol": "BTCUSDT", "venue": "fix", "price_decimals": 2,
                             "qty_decimals": 3, "tick": 10, "lot": 1}],
            "feed": {"kind": "sim", "options": {"events_per_s": events_per_s}},
            "venue": {"kind": "fix", "options": {
                "port": self.ex.port, "sender_comp_id": "LIVESTACK", "target_comp_id": "EXCHANGE",
                "store_dir": os.path.join(workdir, "fix-store"), "heartbeat_s": 5, "reconnect_min_s": 0.1,
                "mass_status": mass, "positions_request": mass}},
        }

    def fill_some(self) -> None:
        got = self.ex.received
        news = [f[11] for m, f in got[self._seen:] if m in ("D", "G")]
        self._seen = len(got)
        if news and self._rng.random() < 0.5:
            try:
                self.ex.fill(self._rng.choice(news), 0.001)
            except Exception:  # noqa: BLE001 - that order ended meanwhile
                pass

    @property
    def sent(self) -> list[str]:
        return [m for m, _ in self.ex.received]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.ex.stop()

