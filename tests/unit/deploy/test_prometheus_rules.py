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
