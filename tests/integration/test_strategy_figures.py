"""Two strategies in one live session (simulated market and venue, two instruments): the figures are
per strategy and per instrument in ``ctl positions``, ``/metrics`` and ``records summary``, and the
one that raises shows its message in the records.

The supervisor runs in this process (as ``livestack run`` does); every wait is bounded.
"""

from __future__ import annotations

import io
import json
import socket
import urllib.request

import pytest

from livestack.node import config
from livestack.node.supervisor import Supervisor
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow]

STRATEGY = '''
import dataclasses
from livestack.strategies.sdk import Strategy, Qty

@dataclasses.dataclass
class P:
    qty: Qty = "0.001"
    boom_after: int = 0        # raise on this book event (0: never)

class Quoter(Strategy):
    Params = P

    def on_start(self, ctx):
        self.books = 0

    def on_book(self, ctx, i):
        self.books += 1
        if self.params.boom_after and self.books >= self.params.boom_after:
            raise RuntimeError(f"beta exploded on book event {self.books}")
        b = ctx.inst(i)
        if b.bid_px > 0 and b.ask_px > b.bid_px:
            ctx.quote(b.bid_px, b.ask_px, self.params.qty)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics(port: int) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_two_strategies_have_their_own_rows_in_ctl_positions_metrics_and_records(tmp_path, capsys, monkeypatch):
    from livestack.cli import main as cli_main
    from livestack.control.client import ControlClient, ControlTimeout
    from livestack.records.cli import summarize

    f = tmp_path / "quoter.py"
    f.write_text(STRATEGY)
    port = _free_port()
    cfg = config.validate({
        "session": {"records_dir": str(tmp_path / "records"), "status_interval_s": 0.0},
        "telemetry": {"metrics_port": port},
        "instruments": [{"id": 1, "symbol": "SIMA", "tick": 1, "lot": 1},
                        {"id": 2, "symbol": "SIMB", "tick": 1, "lot": 1}],
        "strategies": [{"name": f"{f}:Quoter", "instruments": ["SIMA"], "label": "alpha"},
                       {"name": f"{f}:Quoter", "instruments": ["SIMB"], "label": "beta",
                        "params": {"boom_after": 20}, "on_error": "disable"}],
        "risk": {"max_order_qty": 100, "max_position": 1000, "price_band_ticks": 100000},
    })
    sup = Supervisor(cfg, out=io.StringIO())
    try:
        sup.start()
        rows: dict = {}

        def both_strategies_seen():
            assert sup.poll(), "; ".join(sup.events)
            try:
                with ControlClient(sup.control_endpoint, timeout=10) as c:
                    res = c.positions()["result"]
            except ControlTimeout:   # the control process still starting on a busy machine
                return False
            rows.clear()
            rows.update({r["name"]: r for r in res["strategies"]})
            rows["_positions"] = res["positions"]
            return set(rows) >= {"alpha", "beta"} and rows["alpha"]["orders_sent"] > 0 and rows["beta"]["errors"] >= 1

        wait_for(both_strategies_seen, 180, "both strategies in ctl positions, alpha trading, beta failed", poll_s=0.5)
        alpha, beta = rows["alpha"], rows["beta"]
        assert alpha["instruments"] == ["SIMA"] and beta["instruments"] == ["SIMB"]
        assert beta["errors"] == 1 and beta["stopped"] and not alpha["stopped"] and alpha["errors"] == 0
        by_symbol = {p["symbol"]: p for p in rows["_positions"]}
        assert by_symbol["SIMA"]["strategy_name"] == "alpha" and by_symbol["SIMB"]["strategy_name"] == "beta"
        assert alpha["orders_sent"] == by_symbol["SIMA"]["orders_sent"]   # one instrument: its sum

        # the same rows in the operator's table (a terminal wide enough for every column)
        monkeypatch.setenv("COLUMNS", "220")
        assert cli_main(["ctl", "positions", "--endpoint", sup.control_endpoint]) == 0
        out = capsys.readouterr().out
        assert "per strategy" in out and "alpha" in out and "beta" in out and "stopped" in out

        m = _metrics(port)
        assert m[("livestack_strategy_errors_total", (("strategy", "beta"),))] == 1
        assert m[("livestack_strategy_errors_total", (("strategy", "alpha"),))] == 0
        assert m[("livestack_strategy_stopped", (("strategy", "beta"),))] == 1
        assert m[("livestack_strategy_orders_sent_total", (("strategy", "alpha"),))] > 0
        assert ("livestack_strategy_position", (("instrument", "SIMB"), ("strategy", "beta"))) in m
        assert ("livestack_position", (("instrument", "SIMA"),)) in m   # the per-instrument series stay
        assert sup.stop(timeout=60) == 0, sup.events
    finally:
        if sup.poll():
            sup.stop(timeout=60)

    d = summarize(sup.records_path)
    per = {r["name"]: r for r in d["strategies"]}
    assert per["alpha"]["instruments"] == ["SIMA"] and per["alpha"]["orders"] > 0 and per["alpha"]["errors"] == 0
    assert per["beta"]["errors"] == 1 and per["beta"]["stopped"]
    assert [(m["strategy"], m["message"], m["action"]) for m in d["strategy_errors"]] == \
        [("beta", "RuntimeError: beta exploded on book event 20", "DISABLE")]
    assert cli_main(["records", "summary", sup.records_path]) in (0, 1)
    out = capsys.readouterr().out
    assert "per strategy" in out and "RuntimeError: beta exploded on book event 20" in out
    json.dumps(d, default=str)  # --json prints it
