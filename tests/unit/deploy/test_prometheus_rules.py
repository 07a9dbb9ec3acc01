"""deploy/prometheus/alerts.yml: valid rules (``promtool check rules``), unit-tested alerts
(``promtool test rules alerts_test.yml``), and every metric they name is one the exporter exposes."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.unit.deploy.exposition import full_exposition, sample_names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RULES = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
RULE_TESTS = os.path.join(ROOT, "deploy", "prometheus", "alerts_test.yml")
promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                              reason="promtool not installed (Debian package 'prometheus'; .ci/run installs it)")

ALERTS = {"LivestackFeedStale", "LivestackHarnessHeartbeatLost", "LivestackRingFillHigh", "LivestackRejectStorm",
          "LivestackTradingHalted", "LivestackWriterLag", "LivestackProcessRestartLoop"}


def _rules():
    with open(RULES) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]


def test_every_required_alert_is_defined_with_severity_and_summary():
    rules = _rules()
    assert {r["alert"] for r in rules} == ALERTS
    for r in rules:
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"] and r["annotations"]["description"]


def test_every_metric_an_alert_names_is_exposed(session, tmp_path):
    exposed = sample_names(full_exposition(session, tmp_path))
    for r in _rules():
        for name in re.findall(r"\blivestack_[a-z0-9_]+", r["expr"]):
            assert name in exposed, f"alert {r['alert']} uses {name}, which the exporter does not expose"


@promtool
def test_promtool_check_rules_is_clean():
    p = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


@promtool
def test_promtool_rule_unit_tests_pass():
    p = subprocess.run(["promtool", "test", "rules", RULE_TESTS], capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(RULE_TESTS))
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr


def test_the_full_exposition_has_every_process_and_the_issue_s_families(session, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    text = full_exposition(session, tmp_path)
    s = {(x.name, tuple(sorted(x.labels.items()))): x.value
         for f in text_string_to_metric_families(text) for x in f.samples}
    blocks = {dict(k[1])["process"] for k in s if k[0] == "livestack_metrics_block_up"}
    assert blocks == {"feed.binance", "venue.fix", "writer", "control", "supervisor"}
    assert s[("livestack_feed_malformed_total", (("feed", "binance"), ("reason", "json")))] == 1
    assert s[("livestack_feed_reconnects_total", (("feed", "binance"),))] == 1
    assert s[("livestack_feed_resyncs_total", (("feed", "binance"),))] == 2
    assert s[("livestack_venue_malformed_total", (("reason", "garbage"), ("venue", "fix")))] == 2
    assert s[("livestack_venue_exec_refused_total", (("reason", "bad_side"), ("venue", "fix")))] == 1
    assert s[("livestack_venue_rate_limit_used_ratio", (("limit", "orders_10s"), ("venue", "fix")))] == pytest.approx(0.1)
    assert s[("livestack_writer_fsync_seconds_total", ())] == pytest.approx(0.003)
    assert s[("livestack_writer_lag_seconds", ())] == pytest.approx(0.005)
    assert s[("livestack_control_request_errors_total", ())] == 1
    assert s[("livestack_process_restarts_total", (("process", "venue"),))] == 1
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr
