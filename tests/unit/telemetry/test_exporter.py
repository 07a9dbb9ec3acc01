"""The Prometheus exporter: a real HTTP scrape, parsed with prometheus-client's parser and checked
with ``promtool check metrics`` (Debian package ``prometheus``; skipped when promtool is absent)."""

import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from livestack.ipc import segment_name
from livestack.schema import DenyReason, OrderState, TradingState
from livestack.telemetry.block import TelemetryBlock
from livestack.telemetry.exporter import Exporter, exposition


@pytest.fixture
def blk(session):
    b = TelemetryBlock.create(segment_name(session, "telemetry"))
    b.add("events", 1000)
    b.add("fills", 3)
    b.denial(DenyReason.MAX_POSITION)
    b.order_state(OrderState.ACCEPTED)
    b.set_gauge("trading_state", TradingState.REDUCING)
    b.record_many("core", [15, 20, 21, 450, 1000, 1001, 50_000, 20_000_000_000])
    b.record_many("tick_to_trade", [3000] * 10)
    b.register_instrument(0, 1, "BTCUSDT", 2, 3)
    b.set_position(0, 1500, 150_000_000, 12_345, -500, 100_000, 0)
    b.register_ring(0, "md.sim", 1024)
    b.ring_fill(0, 512)
    b.register_process("harness")
    yield b
    b.close()


def scrape(blk):
    exp = Exporter(blk, port=0)
    try:
        with urllib.request.urlopen(exp.url, timeout=10) as r:
            assert r.status == 200
            return r.read().decode()
    finally:
        exp.close()


def test_scrape_parses_and_histograms_are_cumulative_and_consistent(blk):
    text = scrape(blk)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["livestack_events"].type == "counter"
    s = {(x.name, tuple(sorted(x.labels.items()))): x.value for f in fams.values() for x in f.samples}
    assert s[("livestack_events_total", ())] == 1000
    assert s[("livestack_denials_total", (("reason", "MAX_POSITION"),))] == 1
    assert s[("livestack_trading_state", (("state", "REDUCING"),))] == 1
    assert s[("livestack_trading_state", (("state", "ACTIVE"),))] == 0
    assert s[("livestack_position", (("instrument", "BTCUSDT"),))] == 1.5
    assert s[("livestack_realized_pnl", (("instrument", "BTCUSDT"),))] == pytest.approx(0.12345)
    assert s[("livestack_ring_fill_ratio", (("ring", "md.sim"),))] == 0.5
    h = fams["livestack_stage_latency_seconds"]
    assert h.type == "histogram"
    core = [x for x in h.samples if x.labels.get("stage") == "core"]
    buckets = [(float(x.labels["le"]), x.value) for x in core if x.name.endswith("_bucket")]
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    by_le = dict(buckets)
    assert by_le[1e-08] == 0 and by_le[2e-08] == 2 and by_le[5e-08] == 3 and by_le[1e-06] == 5
    assert by_le[1e-05] == 6 and by_le[float("inf")] == 8
    count = [x.value for x in core if x.name.endswith("_count")][0]
    total = [x.value for x in core if x.name.endswith("_sum")][0]
    assert count == 8 and total == pytest.approx((15 + 20 + 21 + 450 + 1000 + 1001 + 50_000 + 20_000_000_000) / 1e9)


def test_every_counter_family_ends_in_total_and_has_help(blk):
    text = exposition(blk)
    for f in text_string_to_metric_families(text):
        assert f.documentation, f.name
        if f.type == "counter":
            assert all(x.name.endswith("_total") or x.name.endswith("_created") for x in f.samples)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package 'prometheus')")
def test_promtool_check_metrics_is_clean(blk):
    text = scrape(blk)
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), p.stdout + p.stderr


def test_a_closed_block_scrapes_as_down(session):
    b = TelemetryBlock.create(segment_name(session, "telemetry"))
    b.close()
    text = exposition(b)
    assert "livestack_telemetry_up 0.0" in text


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (Debian package 'prometheus')")
def test_a_real_prometheus_server_scrapes_the_exporter(blk, tmp_path):
    import json
    import time

    exp = Exporter(blk, port=0)
    web = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: livestack\n"
                   f"    static_configs:\n      - targets: ['127.0.0.1:{exp.port}']\n")
    prom = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{web}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{web}/api/v1/query?query=livestack_events_total"
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.load(r)["data"]["result"]
                if res:
                    value = float(res[0]["value"][1])
                    break
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        assert value == 1000
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/targets", timeout=5) as r:
            (target,) = json.load(r)["data"]["activeTargets"]
        assert target["health"] == "up" and not target["lastError"]
    finally:
        prom.terminate()
        try:
            prom.wait(15)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(5)
        exp.close()
