"""deploy/grafana/livestack.json: a provisionable dashboard whose every query parses as PromQL
(``promtool check rules`` over the queries as recording rules) and names only exposed metrics."""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.unit.deploy.exposition import full_exposition, sample_names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "livestack.json")


def _dash():
    with open(DASHBOARD) as f:
        return json.load(f)


def _targets(d):
    for p in d["panels"]:
        for t in p.get("targets", []):
            yield p, t


def test_dashboard_structure_is_provisionable():
    d = _dash()
    assert d["uid"] == "livestack" and d["title"] and isinstance(d["schemaVersion"], int)
    assert "id" not in d or d["id"] is None  # provisioning assigns ids
    names = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "instance"} <= names
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        g = p["gridPos"]
        assert set(g) == {"x", "y", "w", "h"} and 0 <= g["x"] and g["x"] + g["w"] <= 24
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}"
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs))
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for need in ("latency", "ring fill", "position", "pnl", "trading state", "feed", "restarts"):
        assert need in titles, need


def test_generator_and_committed_json_agree():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", os.path.join(ROOT, "tools", "gen_grafana_dashboard.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.build() == _dash(), "run: python tools/gen_grafana_dashboard.py"


def test_every_query_names_only_exposed_metrics(session, tmp_path):
    exposed = sample_names(full_exposition(session, tmp_path))
    for p, t in _targets(_dash()):
        for name in re.findall(r"\blivestack_[a-z0-9_]+", t["expr"]):
            assert name in exposed, f"panel {p['title']!r} uses {name}, which the exporter does not expose"


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package 'prometheus'; .ci/run installs it)")
def test_every_query_is_valid_promql(tmp_path):
    rules = []
    for i, (p, t) in enumerate(_targets(_dash())):
        expr = t["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
        rules.append({"record": f"livestack:dashboard_q{i}", "expr": expr})
    f = tmp_path / "q.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
