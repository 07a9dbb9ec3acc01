"""A real Prometheus server (the Debian ``prometheus`` binary, on 127.0.0.1 with a tmp dir and an
ephemeral port) scrapes a running stack's exporter; the test asks Prometheus's HTTP API for
livestack metrics of every process: harness, venue, writer, control, supervisor; then the operator
disables trading and the LivestackTradingHalted alert of deploy/prometheus/alerts.yml fires in that server."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from livestack.ipc import shm
from livestack.node import config
from livestack.node.supervisor import Supervisor
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("prometheus") is None,
                                 reason="prometheus not installed (Debian package 'prometheus'; .ci/run installs it)")]


ALERTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "deploy", "prometheus", "alerts.yml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(port: int, q: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_every_process_of_a_running_stack(tmp_path):
    metrics_port, prom_port = _free_port(), _free_port()
    cfg = config.validate({"session": {"records_dir": str(tmp_path / "records"), "status_interval_s": 0.0},
                           "telemetry": {"metrics_port": metrics_port}})
    sup = Supervisor(cfg, out=io.StringIO())
    prom = None
    try:
        sup.start()
        (tmp_path / "prom.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{json.dumps(ALERTS)}]\n"
            "scrape_configs:\n"
            f"  - job_name: livestack\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n")
        log = open(tmp_path / "prom.log", "wb")
        prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prom.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=log)
        want = {
            "livestack_info": lambda r: r[0]["metric"]["session"] == sup.session,
            "livestack_events_total": lambda r: float(r[0]["value"][1]) > 0,                # harness
            "livestack_venue_commands_total": lambda r: float(r[0]["value"][1]) > 0,        # venue
            "livestack_writer_records_written_total": lambda r: float(r[0]["value"][1]) > 0,  # writer
            "livestack_control_requests_total": lambda r: len(r) == 1,                      # control
            "livestack_process_restarts_total": lambda r: {x["metric"]["process"] for x in r} >= {"venue", "writer"},
        }
        seen: dict = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(seen) < len(want):
            assert sup.poll(), "; ".join(sup.events)
            assert prom.poll() is None, (tmp_path / "prom.log").read_text()[-2000:]
            for name, ok in want.items():
                if name in seen:
                    continue
                try:
                    r = _query(prom_port, f'{name}{{job="livestack"}}')
                except OSError:
                    break  # prometheus not listening yet
                if r and ok(r):
                    seen[name] = r
            time.sleep(0.5)
        assert set(seen) == set(want), f"never scraped: {set(want) - set(seen)}"
        up = _query(prom_port, 'up{job="livestack"}')
        assert up and up[0]["value"][1] == "1"
        rules = json.load(urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=5))
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert "LivestackTradingHalted" in names  # the alert rules load into a real server
        from livestack.control.client import ControlClient

        with ControlClient(sup.control_endpoint, timeout=10) as c:  # the operator halts trading
            c.disable()
        firing: list = []

        def halted_fires():
            assert sup.poll(), "; ".join(sup.events)
            alerts = json.load(urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/alerts", timeout=5))
            firing[:] = [a for a in alerts["data"]["alerts"] if a["labels"]["alertname"] == "LivestackTradingHalted"
                         and a["state"] == "firing"]
            return bool(firing)

        wait_for(halted_fires, 120, "LivestackTradingHalted to fire in Prometheus", poll_s=0.5)
        assert firing[0]["labels"]["severity"] == "critical"
        if shutil.which("promtool"):  # the live exposition of a whole stack is lint-clean
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
                text = r.read().decode()
            p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                               timeout=60)
            assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr
    finally:
        if prom is not None:
            prom.terminate()
            try:
                prom.wait(20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait(5)
        sup.stop(timeout=20)
    assert shm.list_segments(sup.session) == []
