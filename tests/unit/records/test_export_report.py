"""``records export --parquet`` (one table per kind, enums as dictionaries, scaled ints with their scale),
the DuckDB queries of docs/analytics.md across two sessions, and ``records report --html`` checked
against the records."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from livestack.cli import main as cli_main
from livestack.records.writer import RecordWriter
from livestack.schema import (
    DenyReason, ExecType, OrderCmdType, OrderState, RecordFlag, Side, SLOT128, new,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

INSTRUMENTS = [{"id": 1, "symbol": "BTCUSDT", "price_decimals": 2, "qty_decimals": 3}]
T0 = 1_723_161_240_000_000_000


def slot(name, seq, journal=False, **fields):
    r = new(name, 1, instrument=1, seq=seq, **fields)
    if journal:
        r["flags"] |= int(RecordFlag.JOURNAL)
    out = np.zeros(1, SLOT128)
    out.view(np.uint8)[:r.dtype.itemsize] = r.view(np.uint8)
    return out


def make_session(path, session, qty_scale=1):
    """Two orders: cid 1 rests (ACCEPTED) then fills (maker); cid 2 fills at once (taker); a denial."""
    recs, seq = [], 0

    def add(name, journal=False, **f):
        nonlocal seq
        seq += 1
        recs.append(slot(name, seq, journal, **f))

    ms = 1_000_000
    add("MD_LEVEL", True, ts=T0, ts_event=T0 - 3 * ms, price=6000000, qty=1000, side=Side.BUY)
    add("ORDER_CMD", ts=T0, client_order_id=1, cmd=OrderCmdType.NEW, side=Side.BUY, price=6000000, qty=10 * qty_scale)
    add("ORDER_STATE", ts=T0, client_order_id=1, state=OrderState.PENDING_NEW, side=Side.BUY, qty=10)
    add("EXEC", True, ts=T0 + 2 * ms, ts_event=T0 + 1 * ms, client_order_id=1, exec_type=ExecType.ACCEPTED, side=Side.BUY)
    add("ORDER_STATE", ts=T0 + 2 * ms, client_order_id=1, state=OrderState.ACCEPTED, prev_state=OrderState.PENDING_NEW)
    add("EXEC", True, ts=T0 + 9 * ms, ts_event=T0 + 8 * ms, client_order_id=1, exec_type=ExecType.FILLED, side=Side.BUY,
        last_px=6000000, last_qty=10 * qty_scale, exec_id=11)
    add("FILL", ts=T0 + 9 * ms, client_order_id=1, side=Side.BUY, price=6000000, qty=10 * qty_scale,
        position=10 * qty_scale, exec_id=11)
    add("POSITION", ts=T0 + 9 * ms, net_qty=10 * qty_scale, cost=6000000 * 10 * qty_scale, unrealized_pnl=0)
    add("ORDER_CMD", ts=T0 + 10 * ms, client_order_id=2, cmd=OrderCmdType.NEW, side=Side.SELL, price=6010000, qty=4)
    add("EXEC", True, ts=T0 + 14 * ms, ts_event=T0 + 13 * ms, client_order_id=2, exec_type=ExecType.FILLED,
        side=Side.SELL, last_px=6010000, last_qty=4, exec_id=12)
    add("FILL", ts=T0 + 14 * ms, client_order_id=2, side=Side.SELL, price=6010000, qty=4, position=10 * qty_scale - 4,
        realized_pnl=10000 * 4, exec_id=12)
    add("POSITION", ts=T0 + 14 * ms, net_qty=10 * qty_scale - 4, realized_pnl=10000 * 4, unrealized_pnl=5000 * 6)
    add("DENIAL", ts=T0 + 15 * ms, reason=DenyReason.MAX_POSITION, side=Side.BUY, intent=1, count=3)
    with RecordWriter(str(path), {"session": session, "instruments": INSTRUMENTS,
                                  "config": {"strategy": {"name": "mm_cy"}}}, {"quiet": True}) as w:
        w.write(np.concatenate(recs))
    return str(path)


@pytest.fixture
def two_sessions(tmp_path):
    a = make_session(tmp_path / "a.h5", "sess-a")
    b = make_session(tmp_path / "b.h5", "sess-b", qty_scale=2)
    out = tmp_path / "pq"
    assert cli_main(["records", "export", a, "--parquet", str(out / "sess-a")]) == 0
    assert cli_main(["records", "export", b, "--parquet", str(out / "sess-b")]) == 0
    return a, b, out


def test_export_writes_one_table_per_kind_with_dictionary_enums_and_scaled_ints(two_sessions):
    a, _, out = two_sessions
    names = {p.name for p in (out / "sess-a").iterdir()}
    assert {"fills.parquet", "order_states.parquet", "order_cmds.parquet", "execs.parquet", "md_levels.parquet",
            "positions.parquet", "denials.parquet", "journal.parquet", "instruments.parquet"} <= names
    t = pq.read_table(out / "sess-a" / "fills.parquet")
    assert pa.types.is_dictionary(t.schema.field("side").type)
    assert t.column("side").to_pylist() == ["BUY", "SELL"]
    assert t.column("price").type == pa.int64() and t.column("price").to_pylist() == [6000000, 6010000]
    meta = t.schema.field("price").metadata
    assert meta[b"unit"] == b"price units" and json.loads(meta[b"scale"]) == {"1": 2}
    assert json.loads(t.schema.field("realized_pnl").metadata[b"scale"]) == {"1": 5}
    assert json.loads(t.schema.metadata[b"livestack.instruments"])[0]["symbol"] == "BTCUSDT"
    os_ = pq.read_table(out / "sess-a" / "order_states.parquet")
    assert os_.column("exec_type").to_pylist()[0] == "NONE"  # a dispatch: never '?0'
    j = pq.read_table(out / "sess-a" / "journal.parquet")
    assert j.column("hseq").to_pylist() == [1, 2, 3, 4]
    assert j.column("kind").to_pylist() == ["MD_LEVEL", "EXEC", "EXEC", "EXEC"]


def test_docs_analytics_queries_run_on_two_sessions(two_sessions):
    duckdb = pytest.importorskip("duckdb")
    _, _, out = two_sessions
    import pathlib

    doc = (pathlib.Path(__file__).parents[3] / "docs" / "analytics.md").read_text()
    queries = re.findall(r"```sql\n(.*?)```", doc, re.S)
    assert len(queries) >= 4
    con = duckdb.connect()
    results = []
    for q in queries:
        results.append(con.execute(q.replace("DIR", str(out))).fetchall())
    fills_per_session = dict(results[0])  # the first query: fills per session
    assert fills_per_session == {"sess-a": 2, "sess-b": 2}
    volume = {r[0]: r[1:] for r in results[1]}  # second: bought/sold in BTC per session
    assert volume["sess-a"][0] == pytest.approx(0.010) and volume["sess-b"][0] == pytest.approx(0.020)


class _Imgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.fees = [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if a.get("id") == "fees":
            self.fees = float(a["data-fees"])


def test_report_html_figures_match_the_records(two_sessions, tmp_path, capsys):
    a, _, _ = two_sessions
    html = tmp_path / "r.html"
    assert cli_main(["records", "report", a, "--html", str(html), "--maker-bps", "1", "--taker-bps", "10"]) == 0
    text = capsys.readouterr().out
    assert "fills" in text and "order_ack" in text and "MAX_POSITION 3" in text
    p = _Imgs()
    p.feed(html.read_text())
    figs = {i["data-figure"]: i for i in p.imgs}
    assert {"pnl-BTCUSDT", "position-BTCUSDT", "latency", "denials"} <= set(figs)
    for i in p.imgs:
        png = base64.b64decode(i["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    from livestack.records import open_session

    with open_session(a) as s:
        pos = s["position"]
        assert int(figs["position-BTCUSDT"]["data-points"]) == len(pos)
        assert float(figs["position-BTCUSDT"]["data-last"]) == pytest.approx(pos.net_qty.iloc[-1])
        assert float(figs["pnl-BTCUSDT"]["data-last"]) == pytest.approx(pos.realized_pnl.iloc[-1] + pos.unrealized_pnl.iloc[-1])
        assert float(figs["denials"]["data-last"]) == s["denial"]["count"].sum()
        f = s["fill"]
        # cid 1 rested before it filled (maker, 1 bps), cid 2 filled at once (taker, 10 bps)
        want = f.price[0] * f.qty[0] * 1e-4 + f.price[1] * f.qty[1] * 10e-4
    assert p.fees == pytest.approx(want)
    r = json.loads(_json(a, capsys))
    assert r["latency_ns"]["order_ack"] == {"n": 1, "p50": 2e6, "p90": 2e6, "p99": 2e6, "max": 2e6}
    assert r["latency_ns"]["md_feed"]["max"] == 3e6 and r["latency_ns"]["first_fill"]["n"] == 2


def _json(path, capsys):
    assert cli_main(["records", "report", path, "--json"]) == 0
    return capsys.readouterr().out


def test_export_spells_out_fees_whose_scale_is_the_fees_not_the_instruments(tmp_path):
    from livestack.venues.fees import asset_code

    recs = [slot("EXEC", 1, True, ts=T0, client_order_id=1, exec_type=ExecType.FILLED, side=Side.BUY,
                 last_px=6000000, last_qty=10, exec_id=11),
            slot("EXEC", 2, True, ts=T0, client_order_id=1, exec_type=ExecType.FEE, side=Side.BUY,
                 last_qty=1_234_500, exec_id=11, orig_client_order_id=asset_code("BNB"))]
    path = str(tmp_path / "f.h5")
    with RecordWriter(path, {"session": "fees", "instruments": INSTRUMENTS}, {"quiet": True}) as w:
        w.write(np.concatenate(recs))
    assert cli_main(["records", "export", path, "--parquet", str(tmp_path / "pq")]) == 0
    t = pq.read_table(tmp_path / "pq" / "execs.parquet")
    assert t.column("exec_type").to_pylist() == ["FILLED", "FEE"]
    assert t.column("fee").to_pylist() == [None, 1_234_500]  # 0.012345 BNB
    assert t.column("fee_asset").to_pylist() == [None, "BNB"]
    assert t.schema.field("fee").metadata[b"scale"] == b"8"
