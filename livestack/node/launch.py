"""The supervisor's feed and venue processes: one per ``[[feeds]]`` / ``[[venues]]`` entry (the
single ``[feed]`` / ``[venue]`` is one of each, named "default"), each with its own rings.

    feed  <name>  ──md.<name>──────▶ harness ──orders.<name>──▶ venue <name>
                                             ◀──exec.<name>───

Ring names: ``md.<name>``, ``orders.<name>``, ``exec.<name>``; for the shorthand's "default" the
kind stands in for the name (``md.sim``, ``orders.binance``: as before [[feeds]] existed).
Process names: ``feed`` / ``venue`` for the shorthand's, ``feed.<name>`` / ``venue.<name>``
otherwise (``livestack ls``, the status line, restarts). Each process gets only its own
instruments (``livestack.node.markets``).

A simulated venue publishes the market itself (no feed process) for a ``kind = "sim"`` feed that
carries exactly the venue's instruments -- the embedded default; any other sim feed runs the
simulated market as a feed process of its own.
"""

from __future__ import annotations

from livestack.node import markets
from livestack.node import schema as S
from livestack.schema import RecordKind


ring_suffix = markets.ring_suffix


def create_rings(sup) -> None:
    """Every feed's md ring and every venue's orders/exec pair, into ``sup.rings``: ``md`` (list,
    feed order), ``venues`` (list of ``{"name", "orders", "exec"}``, venue order), and ``orders`` /
    ``exec``: venue 0's (what a one-venue reader takes)."""
    cfg, rc, r = sup.cfg, sup.cfg["rings"], sup.rings
    r["md"] = [sup._ring("md", f"md.{ring_suffix(f)}", rc["md_capacity"], 64) for f in cfg["feeds"]]
    r["venues"] = [{"name": v["name"],
                    "orders": sup._ring("orders", f"orders.{ring_suffix(v)}", rc["orders_capacity"], 64,
                                        RecordKind.ORDER_CMD),
                    "exec": sup._ring("exec", f"exec.{ring_suffix(v)}", rc["exec_capacity"], 128, RecordKind.EXEC)}
                   for v in cfg["venues"]]
    r["orders"], r["exec"] = r["venues"][0]["orders"], r["venues"][0]["exec"]


def _sim_publishes(cfg: dict, instruments: list) -> dict[int, int]:
    """venue index -> index of the sim feed whose ring that sim venue publishes the market into."""
    out = {}
    for fi, f in enumerate(cfg["feeds"]):
        if f["kind"] != "sim":
            continue
        carried = {i.id for i in markets.of_feed(cfg, instruments, fi)}
        for vi, v in enumerate(cfg["venues"]):
            if v["kind"] == "sim" and vi not in out and {i.id for i in markets.of_venue(cfg, instruments, vi)} == carried:
                out[vi] = fi
                break
    return out


def add_venues(sup, harness_pid: int) -> None:
    cfg, r, cpu = sup.cfg, sup.rings, sup.cfg["cpu"]["venue"]
    publishes = _sim_publishes(cfg, sup.instruments)
    for vi, v in enumerate(cfg["venues"]):
        insts = markets.of_venue(cfg, sup.instruments, vi)
        rings = r["venues"][vi]
        vopts = dict(v["options"], harness_pid=0 if sup.harness_restart else harness_pid)
        name = markets.process_name("venue", v["name"])
        args = (rings["orders"], rings["exec"], insts, vopts, sup.stop_event)
        if v["kind"] == "sim":
            from livestack.venues import sim

            fi = publishes.get(vi)
            sup._add(name, sim.run_process, cpu, args, {"md_ring": r["md"][fi] if fi is not None else None})
        elif v["kind"] == "binance":
            from livestack.venues import binance

            sup._add(name, binance.run_process, cpu, args)
        else:
            from livestack.venues import fix

            sup._add(name, fix.run_process, cpu, args)


def add_feeds(sup) -> None:
    from livestack.feeds.registry import FEED_KINDS, entry_point

    cfg, r, cpu = sup.cfg, sup.rings, sup.cfg["cpu"]["feed"]
    published = set(_sim_publishes(cfg, sup.instruments).values())
    for fi, f in enumerate(cfg["feeds"]):
        if fi in published:
            continue  # the simulated venue publishes this market
        kind = f["kind"]
        if kind == "binance":
            from livestack.feeds import binance_ws

            target = binance_ws.run_process
        elif kind in FEED_KINDS:  # okx, kraken, dbn (livestack/feeds/registry.py)
            target = entry_point(kind)
        elif kind == "nats":  # obs: md relayed from another host's feed over NATS JetStream
            from livestack.feeds import nats as natsfeed

            target = natsfeed.run_process
        else:  # sim: the simulated market without the simulated venue
            from livestack.feeds import sim as simfeed

            target = simfeed.run_process
        sup._add(markets.process_name("feed", f["name"]), target, cpu,
                 (r["md"][fi], markets.of_feed(cfg, sup.instruments, fi), f["options"], sup.stop_event))


def role(process_name: str) -> str:
    """``feed.spot`` -> ``feed``: what a managed process is, whatever its feed's or venue's name."""
    return process_name.partition(".")[0]


def describe(cfg: dict) -> str:
    """The feeds and venues line of ``livestack run``'s start banner."""
    feeds, venues = cfg["feeds"], cfg["venues"]
    if len(feeds) == len(venues) == 1 and feeds[0]["name"] == venues[0]["name"] == S.DEFAULT_NAME:
        return f"feed      {feeds[0]['kind']}   venue {venues[0]['kind']}"  # the shorthand, as always

    def one(x):
        return f"{x['name']} ({x['kind']})"

    return f"feeds     {', '.join(map(one, feeds))}   venues {', '.join(map(one, venues))}"


def publish_metrics(sup) -> None:
    """Each feed's and venue's figures, by name, into the supervisor's metrics block (/metrics):
    ``livestack_feed_healthy{feed}`` (1 when every instrument of the feed has a valid book in the
    core), ``livestack_feed_md_records_total{feed}`` (records its ring carried), ``livestack_venue_orders_total{venue}``
    (orders sent to it), ``livestack_venue_exec_events_total{venue}`` (answers taken from it),
    ``livestack_venue_open_orders{venue}``."""
    blk = getattr(sup, "metrics", None)
    tel = getattr(sup, "telemetry", None)
    if blk is None:
        return
    healthy, open_by = {}, {}
    if tel is not None:
        try:
            healthy = {p["instrument"]: p.get("healthy", False) for p in tel.positions()}
            for o in tel.orders():
                open_by[o["instrument"]] = open_by.get(o["instrument"], 0) + 1
        except Exception:  # noqa: BLE001 - a torn or partial block must not kill the supervisor
            return
    s = markets.summary(sup.cfg)
    for f, ring in zip(s["feeds"], sup.rings["md"]):
        lab = {"feed": f["name"], "kind": f["kind"]}
        blk.gauge("livestack_feed_healthy", "1 when every instrument of the feed has a valid book", lab).set(
            int(all(healthy.get(i, False) for i in f["instruments"])))
        blk.counter("livestack_feed_md_records_total", "market-data records the feed's ring carried", lab).set(
            sup._owned(ring).tail)
    for v, rings in zip(s["venues"], sup.rings["venues"]):
        lab = {"venue": v["name"], "kind": v["kind"]}
        blk.counter("livestack_venue_orders_total", "order commands sent to the venue", lab).set(sup._owned(rings["orders"]).tail)
        blk.counter("livestack_venue_exec_events_total", "execution events taken from the venue", lab).set(
            sup._owned(rings["exec"]).head)
        blk.gauge("livestack_venue_open_orders", "open orders on the venue's instruments", lab).set(
            sum(open_by.get(i, 0) for i in v["instruments"]))
    blk.heartbeat()
