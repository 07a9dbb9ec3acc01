"""The control process end to end: ControlClient → ROUTER → cmd ring → harness → reply ring → client.

The harness here is the STAND-IN in ``tests/unit/control/fake_harness.py`` (it answers the cmd ring
like the Core Runtime's control handler); the real harness is exercised with the whole stack.
Every process is spawned, every wait has a timeout, and shm segments and processes are cleaned up
by the ``session`` and ``procs`` fixtures even when a test fails.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
import threading
import time

import orjson
import pytest
import zmq

from livestack.control.client import CommandError, ControlClient, ControlTimeout, ControlUnauthorized, EventSubscriber
from livestack.ipc import Ring, segment_name
from livestack.schema import RecordKind
from livestack.telemetry.block import TelemetryBlock

CTX = mp.get_context("spawn")


def _wait_for(path, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


class Stack:
    """Rings + telemetry block of a session, the control process and (optionally) the stand-in harness."""

    def __init__(self, session, tmp_path, procs, harness=True, options=None, harness_options=None, client=None):
        self.names = {n: segment_name(session, n) for n in ("cmd", "reply", "events", "telemetry")}
        self.rings = [Ring.create(self.names["cmd"], 256, 128, RecordKind.CONTROL_CMD),
                      Ring.create(self.names["reply"], 256, 128, RecordKind.CONTROL_REPLY),
                      Ring.create(self.names["events"], 1024, 128, 0)]
        self.tel = TelemetryBlock.create(self.names["telemetry"])
        self.stop = CTX.Event()
        self.sock = os.path.join(str(tmp_path), "control.sock")
        opts = {"session_dir": str(tmp_path), "timeout_ms": 1000}
        opts.update(options or {})
        self.endpoint = opts.get("endpoint") or "ipc://" + self.sock
        self.pub_endpoint = opts.get("pub_endpoint") or "ipc://" + os.path.join(str(tmp_path), "control.events.sock")
        if harness:
            from tests.unit.control.fake_harness import run_fake_harness

            h = CTX.Process(target=run_fake_harness, daemon=True,
                            args=(self.names["cmd"], self.names["reply"], self.names["events"],
                                  self.names["telemetry"], self.stop, harness_options or {"open_orders": 5}))
            procs.append(h)
            h.start()
        from livestack.control.server import run_process

        self.server = CTX.Process(target=run_process, daemon=True,
                                  args=(self.names["cmd"], self.names["reply"], self.names["events"],
                                        self.names["telemetry"], opts, self.stop))
        procs.append(self.server)
        self.server.start()
        self.client = ControlClient(self.endpoint, timeout=max(5.0, opts["timeout_ms"] / 1000 + 5), **(client or {}))
        if self.endpoint.startswith("ipc://"):
            _wait_for(self.sock)
        else:  # tcp: the first request waits (bounded) for the bind; ZeroMQ reconnects until then
            self.client.request("orders", timeout=30.0)
        if harness:  # the stand-in has registered its instruments once the hseq gauge ticks on STATUS
            deadline = time.monotonic() + 20
            while not any(p["name"] == "harness" for p in self.tel.processes()):
                assert time.monotonic() < deadline, "stand-in harness did not start"
                time.sleep(0.01)

    def close(self):
        self.client.close()
        self.stop.set()
        self.server.join(10)
        self.tel.close()
        for r in self.rings:
            r.close()


@pytest.fixture
def stack(session, tmp_path, procs):
    s = Stack(session, tmp_path, procs)
    yield s
    s.close()


def test_status_answers_through_the_harness_with_its_sequence_number(stack):
    r = stack.client.status()
    assert r["ok"] and r["cmd"] == "status" and r["hseq"] >= 1
    res = r["result"]
    assert res["trading_state"] == "HALTED" and res["kill_latched"] is False and res["session_active"] is False
    assert res["open_orders"] == 5
    assert {p["name"] for p in res["processes"]} >= {"harness", "control"}
    r2 = stack.client.status()
    assert r2["hseq"] == r["hseq"] + 1  # one harness input per command


def test_trading_state_commands_take_effect_in_order(stack):
    c = stack.client
    with pytest.raises(CommandError) as e:
        c.enable()  # session not started
    assert e.value.code == "not_allowed" and "not allowed in this state" in str(e.value)
    r = c.session_start()
    assert r["result"]["trading_state"] == "ACTIVE" and r["result"]["session_active"]
    assert c.reduce_only()["result"]["trading_state"] == "REDUCING"
    assert c.disable()["result"]["trading_state"] == "HALTED"
    r = c.enable()
    assert r["result"]["trading_state"] == "ACTIVE"
    assert stack.tel.gauge("trading_state") == 0 and stack.tel.gauge("hseq") == r["hseq"]


def test_kill_cancels_every_open_order_latches_and_needs_a_reset(stack):
    c = stack.client
    c.session_start()
    assert c.orders()["result"]["count"] == 5
    r = c.kill()
    assert r["result"] == {"trading_state": "HALTED", "kill_latched": True, "session_active": True, "canceled": 5}
    assert c.orders()["result"]["count"] == 0
    for refused in (c.enable, c.reduce_only, c.session_start):
        with pytest.raises(CommandError) as e:
            refused()
        assert e.value.code == "not_allowed"
    r = c.kill_reset()
    assert r["result"]["kill_latched"] is False and r["result"]["trading_state"] == "HALTED"
    with pytest.raises(CommandError) as e:
        c.kill_reset()
    assert e.value.code == "not_allowed"
    assert c.enable()["result"]["trading_state"] == "ACTIVE"


def test_cancel_all_per_instrument_and_unknown_instrument(stack):
    c = stack.client
    r = c.cancel_all(instrument="SIM1")
    assert r["result"]["canceled"] == 5
    with pytest.raises(CommandError) as e:
        c.cancel_all(instrument="NOPE")
    assert e.value.code == "unknown_instrument" and "NOPE" in str(e.value)
    with pytest.raises(CommandError) as e:
        c.cancel_all(instrument=77)
    assert e.value.code == "unknown_instrument"


def test_set_limit_and_config_updates_are_validated_versioned_and_applied(stack):
    c = stack.client
    hseq0 = stack.tel.gauge("hseq")
    r = c.set_limit("max_position", "1.5", instrument="SIM1")  # qty limit: 3 qty decimals
    assert r["result"]["value"] == 1500 and r["result"]["version"] == 1 and r["hseq"] > hseq0
    r = c.update_config({"strategy.params.1": 7, "risk.max_open_orders": 4}, instrument=1)
    assert r["result"]["version"] == 2
    assert [a["key"] for a in r["result"]["applied"]] == ["strategy.params.1", "risk.max_open_orders"]
    assert stack.tel.gauge("config_version") == 2
    before = stack.tel.gauge("hseq")
    for bad, code in (({"nope.x": 1}, "bad_arguments"), ({"risk.max_position": 1.5}, "bad_arguments"),
                      ({"risk.not_a_limit": 1}, "bad_arguments"), ({"strategy.params.99": 1}, "internal_or_harness"),
                      ({"strategy.speed": 1}, "bad_arguments"), ({"risk.max_position": -1}, "bad_arguments")):
        with pytest.raises(CommandError) as e:
            c.update_config(bad, instrument=1)
        if code != "internal_or_harness":
            assert e.value.code == code, bad
            assert stack.tel.gauge("hseq") == before  # rejected here: nothing reached the harness
        else:
            assert e.value.code == "bad_arguments"  # the stand-in has 3 params: the harness refuses index 99
            before = stack.tel.gauge("hseq")


def test_malformed_unknown_and_bad_requests_get_clear_errors_and_change_nothing(stack):
    c = stack.client
    before = stack.tel.gauge("hseq")
    cases = [
        (b"{not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (orjson.dumps({"cmd": "status"}), "malformed"),
        (orjson.dumps({"id": 1, "cmd": "launch-missiles"}), "unknown_command"),
        (orjson.dumps({"id": 2, "cmd": "kill", "args": {"now": True}}), "bad_arguments"),
        (orjson.dumps({"id": 3, "cmd": "set-limit", "args": {"limit": "max_position"}}), "bad_arguments"),
        (orjson.dumps({"id": 4, "cmd": "set-limit", "args": {"limit": "warp", "value": 1}}), "bad_arguments"),
        (orjson.dumps({"id": 5, "cmd": "kill", "args": [1]}), "bad_arguments"),
    ]
    for payload, code in cases:
        r = c.request_raw(payload, None)
        assert r["ok"] is False and r["error"] == code, (payload, r)
        assert r["message"]
    assert c.request_raw(orjson.dumps({"id": 4, "cmd": "warp"}), 4)["id"] == 4  # the id is echoed
    assert stack.tel.gauge("hseq") == before
    assert stack.tel.gauge("kill_latched") == 0 and c.orders()["result"]["count"] == 5


def test_queries_are_answered_from_the_telemetry_block(stack):
    c = stack.client
    o = c.orders()["result"]
    assert o["count"] == 5 and o["orders"][0]["state"] == "ACCEPTED" and o["orders"][0]["symbol"] == "SIM1"
    assert o["orders"][0]["price_str"] == "110.00"
    p = c.positions()["result"]["positions"]
    assert p[0]["symbol"] == "SIM1" and p[0]["net_qty_str"] == "1.500"
    m = c.metrics()["result"]
    assert "counters" in m and "buckets" not in m["histograms"]["core"]


def test_pub_publishes_state_changes_from_the_events_ring_and_control_outcomes(stack):
    sub = EventSubscriber(stack.pub_endpoint)
    try:
        got = {}
        deadline = time.monotonic() + 20
        while len(got) < 2 and time.monotonic() < deadline:
            # repeat until the subscription has reached the PUB socket (slow joiner on a busy machine)
            stack.client.session_start()
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                m = sub.next(0.1)
                if m and m[0] == "trading_state" and m[1]["state"] == "ACTIVE":
                    got.setdefault("trading_state", m[1])
                elif m and m[0] == "control" and m[1].get("cmd") == "session-start":
                    got.setdefault("control", m[1])
            stack.client.disable()
        assert got["trading_state"]["prev_state"] in ("HALTED", "ACTIVE")
        assert got["control"]["ok"] is True and got["control"]["trading_state"] == "ACTIVE"
    finally:
        sub.close()


def test_ipc_endpoint_is_owner_only(stack):
    assert stat.S_IMODE(os.stat(stack.sock).st_mode) == 0o600


def test_a_dead_harness_gives_a_timeout_error_reply(session, tmp_path, procs):
    s = Stack(session, tmp_path, procs, harness=False, options={"timeout_ms": 300})
    try:
        r = s.client.request("kill")
        assert r["ok"] is False and r["error"] == "timeout" and "did not answer within 300 ms" in r["message"]
        r = s.client.request("orders")  # queries still work from the telemetry block
        assert r["ok"] is True
    finally:
        s.close()


def test_client_never_hangs_on_a_dead_stack(tmp_path):
    c = ControlClient("ipc://" + str(tmp_path / "nobody.sock"), timeout=0.3)
    raised = []

    def call():
        try:
            c.status()
        except ControlTimeout as e:
            raised.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(timeout=30)  # a hard bound on the wait, not a timing claim
    assert not t.is_alive(), "ControlClient.status() hung on a dead stack"
    assert len(raised) == 1 and "no reply" in str(raised[0])
    c.close()


def test_curve_rejects_unauthorized_clients_and_serves_authorized_ones(session):
    """Server in a thread of this process with CURVE on a loopback TCP port and an allow list."""
    import threading

    from livestack.control.server import ControlServer

    names = {n: segment_name(session, n) for n in ("cmd", "reply", "events", "telemetry")}
    rings = [Ring.create(names["cmd"], 16, 128, RecordKind.CONTROL_CMD),
             Ring.create(names["reply"], 16, 128, RecordKind.CONTROL_REPLY),
             Ring.create(names["events"], 16, 128, 0)]
    tel = TelemetryBlock.create(names["telemetry"])
    spub, ssec = zmq.curve_keypair()
    cpub, csec = zmq.curve_keypair()
    srv = ControlServer(names["cmd"], names["reply"], names["events"], names["telemetry"],
                        {"endpoint": "tcp://127.0.0.1:0", "pub_endpoint": "-", "curve_secret_key": ssec,
                         "curve_public_key": spub, "curve_authorized_keys": [cpub]})
    srv.bind()
    stop = threading.Event()
    th = threading.Thread(target=srv.run, args=(stop,), daemon=True)
    th.start()
    try:
        good = ControlClient(srv.endpoint, timeout=5, server_key=spub, public_key=cpub, secret_key=csec)
        assert good.orders()["ok"]
        good.close()
        bad = ControlClient(srv.endpoint, timeout=5, server_key=spub)  # ephemeral key: not on the list
        with pytest.raises(ControlUnauthorized, match="not authorized"):
            bad.orders()
        bad.close()
        plain = ControlClient(srv.endpoint, timeout=0.5)  # no CURVE at all: no answer
        with pytest.raises((ControlTimeout, ControlUnauthorized)):
            plain.orders()
        plain.close()
    finally:
        stop.set()
        th.join(10)
        srv.close()
        tel.close()
        for r in rings:
            r.close()


def test_binding_any_tcp_address_without_curve_is_refused(session):
    """Loopback included: every local user can connect to 127.0.0.1 (issue 12)."""
    from livestack.control.server import ControlServer

    names = {n: segment_name(session, n) for n in ("cmd", "reply")}
    rings = [Ring.create(names["cmd"], 16, 128, RecordKind.CONTROL_CMD),
             Ring.create(names["reply"], 16, 128, RecordKind.CONTROL_REPLY)]
    try:
        for ep in ("tcp://127.0.0.1:0", "tcp://localhost:0", "tcp://[::1]:0", "tcp://0.0.0.0:0", "tcp://*:0",
                   "tcp://10.1.2.3:5555"):
            srv = ControlServer(names["cmd"], names["reply"], None, None, {"endpoint": ep, "pub_endpoint": "-"})
            with pytest.raises(ValueError, match="without CURVE keys"):
                srv.bind()
            srv.close()
    finally:
        for r in rings:
            r.close()


def test_concurrent_clients_each_get_their_own_replies(stack):
    import threading

    errors = []

    def worker(k):
        try:
            with ControlClient(stack.endpoint, timeout=10) as c:
                for _ in range(30):
                    r = c.request("status" if k % 2 else "orders")
                    assert r["ok"] and r["cmd"] == ("status" if k % 2 else "orders")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
