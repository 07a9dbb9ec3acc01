"""Prometheus exporter: a prometheus-client custom collector over the shared-memory telemetry block.

Every scrape reads one :meth:`TelemetryBlock.snapshot` (lock-free) and turns it into metric
families; nothing is cached and the harness is never touched. Served on
``http://127.0.0.1:PORT/metrics`` by default (loopback: put a reverse proxy or a Prometheus agent
beside it to expose it further).

Names follow Prometheus conventions: ``livestack_`` prefix, counters end in ``_total``, base units
(seconds, records, ratios), labels for the dimension a family varies over:

=================================================  ==========================================================
``livestack_<counter>_total``                      every block counter (events, md_events, fills, errors, ...)
``livestack_denials_total{reason}``                denials by DenyReason
``livestack_anomalies_total{code}``                anomalies by Anomaly code
``livestack_order_state_transitions_total{state}`` orders entering each OrderState (orders by status)
``livestack_stage_latency_seconds{stage}``         histogram: ring_wait, core, tick_to_trade, venue_rtt
                                                   (1-2-5 buckets from 10 ns to 10 s, exact sums of the block's buckets)
``livestack_trading_state{state}``                 1 for the current TradingState, 0 for the others
``livestack_kill_switch_latched``, ``livestack_session_active``, ``livestack_open_orders``,
``livestack_harness_sequence``, ``livestack_config_version``, ``livestack_writer_lag_records``,
``livestack_writer_lag_seconds``, ``livestack_core_time_seconds``, ``livestack_instruments``
``livestack_ring_fill_records{ring}``, ``livestack_ring_capacity_records{ring}``, ``livestack_ring_fill_ratio{ring}``,
``livestack_ring_full_total{ring}``
``livestack_position{instrument}``                 net position in base units (qty / 10^qty_decimals)
``livestack_realized_pnl{instrument}``, ``livestack_unrealized_pnl{instrument}``  quote currency
``livestack_strategy_position{strategy,instrument}`` net position of a strategy's instrument (base units)
``livestack_strategy_realized_pnl{strategy}``,     quote currency, summed over the strategy's instruments
``livestack_strategy_unrealized_pnl{strategy}``, ``livestack_strategy_pnl{strategy}``
``livestack_strategy_orders_sent_total{strategy}``, ``livestack_strategy_fills_total{strategy}``,
``livestack_strategy_denials_total{strategy}``     summed over its instruments
``livestack_strategy_errors_total{strategy}``      calls that failed (exception or error code)
``livestack_strategy_stopped{strategy}``           1 once its on_error policy took it out
``livestack_process_up{process,pid}``, ``livestack_process_heartbeat_age_seconds{process}``,
``livestack_process_start_time_seconds{process}``, ``livestack_process_errors_total{process}``,
``livestack_process_lag_seconds{process}``
``livestack_telemetry_up``                         1 when the block was read
``livestack_metrics_block_up{process}``            1 per per-process metrics block read (``procblock.py``)
=================================================  ==========================================================

Every other process (feed, venue, writer, control, supervisor) has its own self-describing metrics
block (:mod:`livestack.telemetry.procblock`); each scrape reads all blocks of the session and
merges same-named series of several blocks into one family (e.g. ``livestack_feed_messages_total``
with a ``feed`` label per feed process). See ``docs/metrics.md`` for the full list.
"""

from __future__ import annotations

import logging
import re
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from livestack.schema import TradingState
from livestack.telemetry import block as tb
from livestack.telemetry import procblock

log = logging.getLogger(__name__)

DEFAULT_PORT = 9464
#: exported histogram bounds in ns: 1-2-5 from 10 ns to 10 s (exact bucket edges of the block)
EXPORT_BOUNDS_NS = tuple(m * 10**k for k in range(1, 11) for m in (1, 2, 5) if m * 10**k <= 10**10)

_GAUGES = {  # block gauge -> (metric name, help, scale)
    "hseq": ("livestack_harness_sequence", "harness input sequence of the last input processed", 1),
    "ts_core": ("livestack_core_time_seconds", "ts of the last input the core processed (seconds since the epoch)", 1e-9),
    "kill_latched": ("livestack_kill_switch_latched", "1 while the kill switch is latched", 1),
    "session_active": ("livestack_session_active", "1 between session start and stop", 1),
    "config_version": ("livestack_config_version", "version of the last config update applied", 1),
    "open_orders": ("livestack_open_orders", "open orders now", 1),
    # writer lag: exported from the writer's own metrics block (livestack_writer_lag_*)
    "instruments": ("livestack_instruments", "instruments configured", 1),
    "rseq": ("livestack_record_sequence", "record seq of the last record the harness wrote", 1),
    "writer_disk_state": ("livestack_writer_disk_state",
                          "records disk: 0 ok, 1 low (trading REDUCING), 2 halt (HALTED), 3 writer stopped (full)", 1),
    "writer_free_bytes": ("livestack_writer_free_bytes", "free bytes on the records filesystem", 1),
    "records_lost_disk_full": ("livestack_records_lost_disk_full",
                               "records discarded by the writer after the disk filled (alert when > 0)", 1),
}
_LABELLED_COUNTERS = {"denials", "anomalies"}  # exported by label instead


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    out = []
    cum = 0
    i = 0
    n = len(buckets)
    for bound in EXPORT_BOUNDS_NS:
        while i < n - 1 and tb.BUCKET_UPPER_NS[i] <= bound:
            cum += buckets[i]
            i += 1
        out.append((floatToGoString(bound / 1e9), cum))
    out.append(("+Inf", sum(buckets)))
    return out


class TelemetryCollector:
    """prometheus-client collector: ``registry.register(TelemetryCollector(block))``."""

    def __init__(self, block, session: str | None = None):
        self.block = block
        self.session = session if session is not None else procblock.session_of(getattr(block, "name", ""))

    def describe(self):
        return []  # dynamic families: no pre-registration checks

    def collect(self):
        up = GaugeMetricFamily("livestack_telemetry_up", "1 when the telemetry block was read")
        try:
            snap = self.block.snapshot()
        except Exception:  # noqa: BLE001 - a scrape must answer even when the block is gone
            snap = None
        up.add_metric([], 0 if snap is None else 1)
        yield up
        taken = set()
        if snap is not None:
            for fam in self._families(snap):
                taken.add(fam.name)
                yield fam
        if self.session:
            yield from process_block_families(self.session, taken)

    def _families(self, snap: dict):
        for name, value in snap["counters"].items():
            if name in _LABELLED_COUNTERS:
                continue
            yield CounterMetricFamily(f"livestack_{name}", tb.COUNTER_HELP[name], value=value)
        for fam, key, label, doc in (("livestack_denials", "denials", "reason", "intents denied, by DenyReason"),
                                     ("livestack_anomalies", "anomalies", "code", "anomalies recorded, by Anomaly code"),
                                     ("livestack_order_state_transitions", "order_states", "state",
                                      "orders entering each OrderState")):
            m = CounterMetricFamily(fam, doc, labels=[label])
            for code, v in snap[key].items():
                if code == "NONE":
                    continue
                m.add_metric([code], v)
            yield m
        g = snap["gauges"]
        for key, (name, doc, scale) in _GAUGES.items():
            yield GaugeMetricFamily(name, doc, value=g[key] * scale)
        ts = GaugeMetricFamily("livestack_trading_state", "1 for the current trading state", labels=["state"])
        for st in TradingState:
            ts.add_metric([st.name], 1 if g["trading_state"] == st else 0)
        yield ts

        h = HistogramMetricFamily("livestack_stage_latency_seconds",
                                  "latency of each pipeline stage (ring_wait, core, tick_to_trade, venue_rtt)",
                                  labels=["stage"])
        for stage, hist in snap["histograms"].items():
            h.add_metric([stage], _cumulative(hist["buckets"]), sum_value=hist["sum_ns"] / 1e9)
        yield h

        fill = GaugeMetricFamily("livestack_ring_fill_records", "records in the ring not yet consumed", labels=["ring"])
        cap = GaugeMetricFamily("livestack_ring_capacity_records", "ring capacity in records", labels=["ring"])
        ratio = GaugeMetricFamily("livestack_ring_fill_ratio", "ring fill level, 0..1", labels=["ring"])
        full = CounterMetricFamily("livestack_ring_full", "writes that found the ring full", labels=["ring"])
        for r in snap["rings"]:
            fill.add_metric([r["name"]], r["fill"])
            cap.add_metric([r["name"]], r["capacity"])
            ratio.add_metric([r["name"]], r["fill_ratio"])
            full.add_metric([r["name"]], r["overflows"])
        yield from (fill, cap, ratio, full)

        pos = GaugeMetricFamily("livestack_position", "net position in base units", labels=["instrument"])
        rpnl = GaugeMetricFamily("livestack_realized_pnl", "realized PnL in quote currency", labels=["instrument"])
        upnl = GaugeMetricFamily("livestack_unrealized_pnl", "unrealized PnL in quote currency at the mark",
                                 labels=["instrument"])
        for p in snap["positions"]:
            q = 10 ** p["qty_decimals"]
            pq = 10 ** (p["qty_decimals"] + p["price_decimals"])
            label = [p["symbol"] or str(p["instrument"])]
            pos.add_metric(label, p["net_qty"] / q)
            rpnl.add_metric(label, p["realized_pnl"] / pq)
            upnl.add_metric(label, p["unrealized_pnl"] / pq)
        yield from (pos, rpnl, upnl)
        if snap.get("strategies"):
            yield from _strategy_families(snap)

        up = GaugeMetricFamily("livestack_process_up", "1 while the process runs and heartbeats",
                               labels=["process", "pid"])
        age = GaugeMetricFamily("livestack_process_heartbeat_age_seconds", "time since the last heartbeat",
                                labels=["process"])
        start = GaugeMetricFamily("livestack_process_start_time_seconds", "process registration time",
                                  labels=["process"])
        errs = CounterMetricFamily("livestack_process_errors", "errors the process counted", labels=["process"])
        lag = GaugeMetricFamily("livestack_process_lag_seconds", "how far behind its input the process is",
                                labels=["process"])
        seen = set()
        for p in snap["processes"]:
            name = p["name"] if p["name"] not in seen else f"{p['name']}-{p['slot']}"
            seen.add(name)
            up.add_metric([name, str(p["pid"])], 1 if p["alive"] else 0)
            age.add_metric([name], max(p["heartbeat_age_s"], 0.0))
            start.add_metric([name], p["started_ns"] / 1e9)
            errs.add_metric([name], p["errors"])
            lag.add_metric([name], p["lag_ns"] / 1e9)
        yield from (up, age, start, errs, lag)


def _strategy_families(snap: dict):
    """Per-strategy series (label ``strategy``): each instrument belongs to at most one strategy,
    so a strategy's figures are sums over its instruments; positions stay per instrument."""
    from livestack.strategies.telemetry import per_strategy

    rows = per_strategy(snap["positions"], snap["strategies"])
    pos = GaugeMetricFamily("livestack_strategy_position", "net position of a strategy's instrument in base units",
                            labels=["strategy", "instrument"])
    fams = {k: GaugeMetricFamily(f"livestack_strategy_{k}", doc, labels=["strategy"]) for k, doc in (
        ("realized_pnl", "realized PnL in quote currency, summed over the strategy's instruments"),
        ("unrealized_pnl", "unrealized PnL in quote currency at the mark, summed over the strategy's instruments"),
        ("pnl", "realized + unrealized PnL in quote currency"),
        ("stopped", "1 once the strategy's on_error policy took it out (disable / halt)"))}
    counters = {k: CounterMetricFamily(f"livestack_strategy_{k}", doc, labels=["strategy"]) for k, doc in (
        ("orders_sent", "order commands dispatched for the strategy's instruments"),
        ("fills", "fills applied on the strategy's instruments"),
        ("denials", "intents denied on the strategy's instruments"),
        ("errors", "strategy calls that failed (an exception or an error code; ANOMALY STRATEGY_ERROR)"))}
    for r in rows:
        label = [r["name"]]
        for sym, q in r["positions"].items():
            pos.add_metric([r["name"], sym], q)
        for k in ("realized_pnl", "unrealized_pnl", "pnl"):
            fams[k].add_metric(label, r[k])
        fams["stopped"].add_metric(label, 1 if r["stopped"] else 0)
        for k in counters:
            counters[k].add_metric(label, r[k])
    yield pos
    yield from fams.values()
    yield from counters.values()


def _parse_labels(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _LABEL_PAIR.finditer(text):
        out.append((m.group(1), re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(2))))
    return out


_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def process_block_families(session: str, taken: set | frozenset = frozenset()):
    """Metric families of every per-process metrics block of ``session``: series of the same name
    from several blocks (two feeds) merge into one family; a name registered with two types is
    exported once, with the first type seen (and logged)."""
    fams: dict[str, tuple[int, str, list]] = {}
    up = GaugeMetricFamily("livestack_metrics_block_up", "1 for each per-process metrics block read",
                           labels=["process"])
    for name in procblock.session_blocks(session):
        try:
            b = procblock.read(name)
        except Exception:  # noqa: BLE001 - a block removed or half-created between listdir and read
            continue
        up.add_metric([b["process"]], 1)
        const = _parse_labels(b["labels"])
        for kind, mname, labels, doc, value in b["metrics"]:
            f = fams.setdefault(mname, (kind, doc, []))
            if f[0] != kind:
                log.warning("metric %s registered as two types; %s's series skipped", mname, b["process"])
                continue
            f[2].append((const + _parse_labels(labels), value))
    yield up
    for mname, (kind, doc, series) in sorted(fams.items()):
        if mname.removesuffix("_total") in taken:
            log.warning("process metric %s has the name of a harness metric; skipped", mname)
            continue
        keys: list[str] = []
        for lab, _ in series:
            for k, _v in lab:
                if k not in keys:
                    keys.append(k)
        cls = CounterMetricFamily if kind == procblock.COUNTER else GaugeMetricFamily
        fam = cls(mname, doc or mname, labels=keys)
        seen = set()
        for lab, value in series:
            d = dict(lab)
            vals = tuple(d.get(k, "") for k in keys)
            if vals in seen:
                continue  # two blocks with the same series: the first wins
            seen.add(vals)
            fam.add_metric(list(vals), value)
        yield fam


def registry_for(block) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(TelemetryCollector(block))
    return reg


def exposition(block) -> str:
    """The Prometheus text exposition of the block now."""
    return generate_latest(registry_for(block)).decode()


class Exporter:
    """HTTP server for ``/metrics`` in a background thread (port 0: any free port, see ``.port``)."""

    def __init__(self, block, port: int = DEFAULT_PORT, addr: str = "127.0.0.1"):
        self.block = block
        self.registry = registry_for(block)
        self.addr = addr
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        self.port = self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def run_process(telemetry: str, options: dict, stop=None) -> None:
    """Entry point of the exporter ("monitor") process, for the supervisor.

    options: ``port`` (default 9464; config ``telemetry.metrics_port``), ``addr`` (127.0.0.1),
    ``attach_timeout_s`` (10). Heartbeats into its own process slot; runs until ``stop`` or SIGTERM.
    """
    import signal

    from livestack.telemetry.block import TelemetryBlock

    opts = dict(options or {})
    blk = TelemetryBlock.attach(telemetry, timeout=float(opts.get("attach_timeout_s", 10.0)))
    slot = blk.register_process("exporter")
    flag = {"stop": False}
    signal.signal(signal.SIGTERM, lambda *_: flag.__setitem__("stop", True))
    exp = Exporter(blk, int(opts.get("port") or opts.get("metrics_port") or DEFAULT_PORT), opts.get("addr", "127.0.0.1"))
    logging.getLogger(__name__).info("serving %s", exp.url)
    try:
        while not flag["stop"] and not (stop is not None and stop.is_set()):
            blk.heartbeat(slot)
            time.sleep(0.25)
    finally:
        exp.close()
        blk.unregister_process(slot)
        blk.close()


if __name__ == "__main__":  # pragma: no cover
    run_process(sys.argv[1], {"port": int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_PORT})
