"""PUB of events-ring records (FILL, ANOMALY, TRADING_STATE → JSON), and the replies the control
process gives when the harness is not consuming (timeouts, then a full command ring)."""

import threading
import time

import numpy as np
import orjson
import pytest
import zmq

from livestack.control.client import EventSubscriber
from livestack.ipc import Ring, segment_name
from livestack.schema import DTYPES, RecordKind, Side, spec
from livestack.telemetry.block import TelemetryBlock
from tests.integration.test_control import Stack


def _slot(name, **fields):
    rec = np.zeros(1, dtype=DTYPES[name])
    rec["kind"] = spec.RECORDS_BY_NAME[name].kind
    rec["version"] = 1
    for k, v in fields.items():
        rec[k] = v
    raw = rec.tobytes()
    return raw + bytes(128 - len(raw))


def test_fills_and_anomalies_from_the_events_ring_are_published_as_json(session, tmp_path, procs):
    s = Stack(session, tmp_path, procs, harness=False)  # this test process produces the events ring
    sub = EventSubscriber(s.pub_endpoint, topics=("fill", "anomaly"))
    try:
        events = Ring.attach(s.names["events"])
        got = {}
        deadline = time.monotonic() + 20
        while len(got) < 2 and time.monotonic() < deadline:  # repeat: slow joiner on a busy machine
            assert events.write(_slot("FILL", hseq=9, client_order_id=42, exec_id=77, price=10050, qty=10, side=Side.BUY,
                                      position=10, realized_pnl=-5)) == 0
            assert events.write(_slot("ANOMALY", hseq=10, client_order_id=43, code=2, detail=77)) == 0
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                m = sub.next(0.1)
                if m:
                    got[m[0]] = m[1]
        assert got["fill"]["client_order_id"] == 42 and got["fill"]["side"] == "BUY" and got["fill"]["price"] == 10050
        assert got["anomaly"]["code"] == "DUPLICATE_EXEC" and got["anomaly"]["detail"] == 77
        events.close()
    finally:
        sub.close()
        s.close()


def test_commands_time_out_then_a_full_command_ring_is_reported_unavailable(session, tmp_path):
    from livestack.control.server import ControlServer

    names = {n: segment_name(session, n) for n in ("cmd", "reply", "telemetry")}
    rings = [Ring.create(names["cmd"], 2, 128, RecordKind.CONTROL_CMD),
             Ring.create(names["reply"], 2, 128, RecordKind.CONTROL_REPLY)]
    tel = TelemetryBlock.create(names["telemetry"])
    srv = ControlServer(names["cmd"], names["reply"], None, names["telemetry"],
                        {"endpoint": f"ipc://{tmp_path}/c.sock", "pub_endpoint": "-", "timeout_ms": 300})
    srv.bind()
    stop = threading.Event()
    th = threading.Thread(target=srv.run, args=(stop,), daemon=True)
    th.start()
    ctx = zmq.Context()
    d = ctx.socket(zmq.DEALER)
    d.linger = 0
    d.connect(srv.endpoint)
    try:
        for i in range(3):  # nobody consumes the cmd ring: two fit, the third does not
            d.send_multipart([b"", orjson.dumps({"id": i, "cmd": "disable"})])
        replies = {}
        deadline = time.monotonic() + 10
        while len(replies) < 3 and time.monotonic() < deadline:
            if d.poll(500):
                r = orjson.loads(d.recv_multipart()[-1])
                replies[r["id"]] = r
        assert replies[2]["error"] == "unavailable" and "command ring full" in replies[2]["message"]
        assert replies[0]["error"] == replies[1]["error"] == "timeout"
    finally:
        d.close(0)
        ctx.term()
        stop.set()
        th.join(10)
        srv.close()
        tel.close()
        for r in rings:
            r.close()
