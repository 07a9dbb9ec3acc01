"""Generate deploy/grafana/livestack.json (the provisionable Grafana dashboard).

The JSON is committed; edit this script and re-run it (``python tools/gen_grafana_dashboard.py``)
rather than the JSON by hand. tests/unit/deploy/test_grafana_dashboard.py checks the structure and
that every expression names metrics the exporter exposes.
"""

import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'instance=~"$instance"'
RI = "$__rate_interval"


def q(expr, legend="", ref="A"):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


def panel(pid, title, targets, x, y, w=12, h=8, kind="timeseries", unit=None, desc="", extra=None):
    p = {"id": pid, "type": kind, "title": title, "description": desc, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
         "fieldConfig": {"defaults": {"unit": unit or "short"}, "overrides": []},
         "options": {}}
    if extra:
        p.update(extra)
    return p


def row(pid, title, y):
    return {"id": pid, "type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            "panels": []}


def build():
    P = []
    y = 0
    P.append(row(1, "Session", y)); y += 1
    P.append(panel(2, "Trading state", [q(f'max by (state) (livestack_trading_state{{{SEL}}}) == 1', "{{state}}")],
                   0, y, 6, 4, "stat", desc="ACTIVE / REDUCING / HALTED",
                   extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "name"}}))
    P.append(panel(3, "Kill switch latched", [q(f"livestack_kill_switch_latched{{{SEL}}}")], 6, y, 4, 4, "stat"))
    P.append(panel(4, "Open orders", [q(f"livestack_open_orders{{{SEL}}}")], 10, y, 4, 4, "stat"))
    P.append(panel(5, "Session", [q(f"livestack_info{{{SEL}}}", "{{session}} {{strategy}} v{{version}} cfg {{config_hash}}")],
                   14, y, 10, 4, "table", extra={"options": {"showHeader": True}}))
    y += 4
    P.append(row(10, "Latency", y)); y += 1
    stages = f"sum by (stage, le) (rate(livestack_stage_latency_seconds_bucket{{{SEL}}}[{RI}]))"
    P.append(panel(11, "Stage latency p50 / p99 / p99.9",
                   [q(f"histogram_quantile(0.5, {stages})", "p50 {{stage}}"),
                    q(f"histogram_quantile(0.99, {stages})", "p99 {{stage}}"),
                    q(f"histogram_quantile(0.999, {stages})", "p99.9 {{stage}}")],
                   0, y, 16, 9, unit="s", desc="ring_wait, core, tick_to_trade, venue_rtt"))
    P.append(panel(12, "Writer lag and fsync",
                   [q(f"livestack_writer_lag_seconds{{{SEL}}}", "lag"),
                    q(f"livestack_writer_fsync_last_seconds{{{SEL}}}", "last fsync"),
                    q(f"rate(livestack_writer_fsync_seconds_total{{{SEL}}}[{RI}]) / "
                      f"rate(livestack_writer_fsyncs_total{{{SEL}}}[{RI}])", "mean fsync")],
                   16, y, 8, 9, unit="s"))
    y += 9
    P.append(row(20, "Throughput", y)); y += 1
    P.append(panel(21, "Inputs per second",
                   [q(f"rate(livestack_{c}_total{{{SEL}}}[{RI}])", c) for c in
                    ("events", "md_events", "exec_events", "control_events", "timer_events")],
                   0, y, 12, 8, unit="ops"))
    P.append(panel(22, "Orders, fills, denials per second",
                   [q(f"rate(livestack_{c}_total{{{SEL}}}[{RI}])", c) for c in
                    ("orders_new", "orders_cancel", "orders_replace", "fills")]
                   + [q(f"sum by (reason) (rate(livestack_denials_total{{{SEL}}}[{RI}]))", "denied {{reason}}"),
                      q(f'rate(livestack_order_state_transitions_total{{{SEL},state="REJECTED"}}[{RI}])', "rejected")],
                   12, y, 12, 8, unit="ops"))
    y += 8
    P.append(panel(23, "Ring fill", [q(f"livestack_ring_fill_ratio{{{SEL}}}", "{{ring}}")], 0, y, 12, 8,
                   unit="percentunit", desc="alert at 80%"))
    P.append(panel(24, "Ring full writes per second",
                   [q(f"rate(livestack_ring_full_total{{{SEL}}}[{RI}])", "{{ring}}")], 12, y, 12, 8, unit="ops"))
    y += 8
    P.append(row(30, "Positions and PnL", y)); y += 1
    P.append(panel(31, "Position", [q(f"livestack_position{{{SEL}}}", "{{instrument}}")], 0, y, 12, 8))
    P.append(panel(32, "PnL", [q(f"livestack_realized_pnl{{{SEL}}}", "realized {{instrument}}"),
                              q(f"livestack_unrealized_pnl{{{SEL}}}", "unrealized {{instrument}}"),
                              q(f"livestack_realized_pnl{{{SEL}}} + livestack_unrealized_pnl{{{SEL}}}",
                                "total {{instrument}}")], 12, y, 12, 8))
    y += 8
    P.append(row(40, "Feed health", y)); y += 1
    P.append(panel(41, "Feed messages per second",
                   [q(f"rate(livestack_feed_messages_total{{{SEL}}}[{RI}])", "{{feed}}")], 0, y, 8, 8, unit="ops"))
    P.append(panel(42, "Seconds since the last message",
                   [q(f"time() - livestack_feed_last_message_timestamp_seconds{{{SEL}}}", "{{feed}}")],
                   8, y, 8, 8, unit="s"))
    P.append(panel(43, "Gaps, resyncs, reconnects, malformed (per 5 min)",
                   [q(f"increase(livestack_feed_gaps_total{{{SEL}}}[5m])", "gaps (core)"),
                    q(f"increase(livestack_feed_stale_total{{{SEL}}}[5m])", "stale (core)"),
                    q(f"increase(livestack_feed_resyncs_total{{{SEL}}}[5m])", "resyncs {{feed}}"),
                    q(f"increase(livestack_feed_reconnects_total{{{SEL}}}[5m])", "reconnects {{feed}}"),
                    q(f"sum by (feed, reason) (increase(livestack_feed_malformed_total{{{SEL}}}[5m]))",
                      "malformed {{feed}} {{reason}}")],
                   16, y, 8, 8))
    y += 8
    P.append(row(50, "Venues and processes", y)); y += 1
    P.append(panel(51, "Venue commands / events / rejects per second",
                   [q(f"rate(livestack_venue_commands_total{{{SEL}}}[{RI}])", "commands {{venue}}"),
                    q(f"rate(livestack_venue_events_total{{{SEL}}}[{RI}])", "events {{venue}}"),
                    q(f"rate(livestack_venue_rejects_total{{{SEL}}}[{RI}])", "rejects {{venue}}")],
                   0, y, 8, 8, unit="ops"))
    P.append(panel(52, "Process restarts (1 h)",
                   [q(f"increase(livestack_process_restarts_total{{{SEL}}}[1h])", "{{process}}")], 8, y, 8, 8))
    P.append(panel(53, "Heartbeat age",
                   [q(f"livestack_process_heartbeat_age_seconds{{{SEL}}}", "{{process}}")], 16, y, 8, 8, unit="s"))
    y += 8
    P.append(panel(54, "Processes up", [q(f"livestack_process_up{{{SEL}}}", "{{process}} {{pid}}"),
                                        q(f"livestack_metrics_block_up{{{SEL}}}", "block {{process}}")],
                   0, y, 12, 6, "stat"))
    P.append(panel(56, "NATS JetStream: records spooled, not yet acknowledged",
                   [q(f"livestack_writer_nats_pending_bytes{{{SEL}}} / 128", "pending records"),
                    q(f"rate(livestack_writer_nats_published_records_total{{{SEL}}}[{RI}])", "published/s"),
                    q(f"livestack_writer_nats_connected{{{SEL}}}", "connected")], 0, y + 6, 12, 6))
    P.append(panel(55, "Control requests / errors per second",
                   [q(f"rate(livestack_control_requests_total{{{SEL}}}[{RI}])", "requests"),
                    q(f"rate(livestack_control_request_errors_total{{{SEL}}}[{RI}])", "errors")], 12, y, 12, 6, unit="ops"))
    return {
        "uid": "livestack", "title": "livestack", "tags": ["livestack", "trading"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "5s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            {"name": "instance", "label": "host", "type": "query", "datasource": DS,
             "query": {"query": "label_values(livestack_info, instance)", "refId": "instance"},
             "definition": "label_values(livestack_info, instance)", "includeAll": True, "multi": True,
             "refresh": 2, "current": {}, "hide": 0},
        ]},
        "annotations": {"list": []},
        "panels": P,
    }


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(__file__), "..", "deploy", "grafana", "livestack.json")
    with open(out, "w") as f:
        json.dump(build(), f, indent=2)
        f.write("\n")
    print(f"wrote {os.path.normpath(out)}")
