"""The exporter as the supervisor starts it: ``exporter.run_process(telemetry, options, stop)`` in a
spawned process, scraped over HTTP while this process writes the block."""

import multiprocessing as mp
import socket
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from livestack.ipc import segment_name
from livestack.telemetry.block import TelemetryBlock


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_exporter_process_serves_live_values_and_heartbeats(session, procs):
    from livestack.telemetry.exporter import run_process

    ctx = mp.get_context("spawn")
    blk = TelemetryBlock.create(segment_name(session, "telemetry"))
    stop = ctx.Event()
    port = _free_port()
    p = ctx.Process(target=run_process, args=(blk.name, {"port": port}, stop), daemon=True)
    procs.append(p)
    p.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        seen = []
        deadline = time.monotonic() + 30
        for value in (7, 11):
            blk.add("fills", value - (seen[-1] if seen else 0))
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        text = r.read().decode()
                except OSError:
                    time.sleep(0.05)
                    continue
                fams = {f.name: f for f in text_string_to_metric_families(text)}
                v = fams["livestack_fills"].samples[0].value
                if v == value:
                    seen.append(value)
                    break
                time.sleep(0.05)
        assert seen == [7, 11]
        names = {x.labels["process"] for x in fams["livestack_process_up"].samples if x.value == 1}
        assert "exporter" in names
    finally:
        stop.set()
        p.join(10)
        blk.close()
    assert p.exitcode == 0
