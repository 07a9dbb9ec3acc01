"""Capture formats (livestack native, cryptofeed raw recorder), ``livestack capture verify|convert``."""

from __future__ import annotations

import json

import pytest

from livestack.cli import main
from livestack.feeds.capture import read_capture
from livestack.feeds.capture_formats import detect_format, read_messages, seconds_to_ns, write_livestack
from livestack.testing.l2_venue import kraken_session, okx_session


def _cryptofeed(path, url, msgs, t0=1652459224.5300605, sent=True, bytes_literal=False):
    lines = [f"{url} <-> {t0}"]
    if sent:
        lines.append(f'{url} <- {t0 + 0.1}: {{"op":"subscribe"}}')
    for i, m in enumerate(msgs):
        p = repr(m) if bytes_literal else m.decode()
        lines.append(f"{t0 + 1 + i / 1000:.7f}: {p}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_seconds_to_ns_exact():
    assert seconds_to_ns(b"1633998512.0633569") == 1633998512063356900
    assert seconds_to_ns(b"1618678132") == 1618678132 * 10**9


def test_cryptofeed_reader_and_convert_roundtrip(tmp_path):
    msgs = okx_session(seed=1, n=20)
    cf = _cryptofeed(tmp_path / "OKX.ws.1.0", "wss://ws.okx.com:8443/ws/v5/public", msgs, bytes_literal=True)
    assert detect_format(cf) == "cryptofeed"
    r = read_messages(cf)
    assert [m.data for m in r.messages] == msgs  # b'...' literals turned back into bytes
    assert r.sent == 1 and r.connects == 1 and r.malformed == 0
    out = tmp_path / "okx.gz"
    assert main(["capture", "convert", str(cf), str(out)]) == 0
    assert detect_format(out) == "livestack"
    assert read_capture(out) == [(m.ts, m.data) for m in r.messages]


def test_cryptofeed_binance_http_snapshot_merged(tmp_path):
    ws = tmp_path / "BINANCE.ws.1.0"
    ws.write_text(
        "wss://stream.binance.com:9443/stream?streams=abcusdt@depth@100ms <-> 1000.0\n"
        '1000.5: {"stream":"abcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ABCUSDT","U":5,"u":7,"b":[["1.00","2.0"]],"a":[]}}\n'
        '1002.0: {"stream":"abcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"s":"ABCUSDT","U":8,"u":9,"b":[],"a":[["1.10","3.0"]]}}\n'
        "garbage line\n")
    (tmp_path / "BINANCE.http.0.0").write_text(
        'https://api.binance.com/api/v3/depth?symbol=ABCUSDT&limit=1000 -> 1001.0: '
        '{"lastUpdateId":6,"bids":[["0.90","1.0"]],"asks":[["1.20","1.0"]]}\n')
    r = read_messages(ws)
    assert [m.ts for m in r.messages] == [1000_500_000_000, 1001_000_000_000, 1002_000_000_000]
    assert r.messages[1].symbol == "ABCUSDT" and r.malformed == 1
    from livestack.feeds.capture_cli import verify

    v = verify(ws, "binance")
    assert v["snapshots"] == 1 and v["gaps"] == 0 and v["book_updates"] == 2 + 2  # snapshot 2, diffs: 1 + 1
    assert v["malformed"] == 1


@pytest.mark.parametrize("venue,gen", [("okx", okx_session), ("kraken", kraken_session)])
def test_verify_cli_json_and_exit_status(tmp_path, capsys, venue, gen):
    msgs = gen(seed=4, n=60)
    good = tmp_path / "good.gz"
    write_livestack(good, [(1_000 + i, m) for i, m in enumerate(msgs)])
    assert main(["capture", "verify", str(good), "--venue", venue, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= {"messages", "book_updates", "trades", "checksum_ok", "checksum_failed", "gaps", "malformed"}
    assert r["checksum_failed"] == 0 and r["gaps"] == 0 and r["checksum_ok"] >= 60 and r["trades"] == 12
    books = [i for i, m in enumerate(msgs) if b"book" in m and b"snapshot" not in m and i > 5]
    bad = tmp_path / "lost.txt"
    lost = msgs[:books[10]] + msgs[books[10] + 1:] + [b"{not json"]
    write_livestack(bad, [(1_000 + i, m) for i, m in enumerate(lost)])
    assert main(["capture", "verify", str(bad), "--venue", venue, "--json"]) == 1
    r = json.loads(capsys.readouterr().out)
    assert r["gaps"] == 1 and r["malformed"] == 1
    # cryptofeed form of the same messages verifies the same
    cf = _cryptofeed(tmp_path / f"{venue.upper()}.ws.1.0", "wss://x", msgs)
    assert main(["capture", "verify", str(cf), "--venue", venue, "--format", "cryptofeed"]) == 0


def test_verify_unreadable_file_is_a_clear_error(tmp_path, capsys):
    p = tmp_path / "x"
    p.write_text("hello world\n")
    assert main(["capture", "verify", str(p), "--venue", "okx"]) == 2
    assert "neither a livestack capture" in capsys.readouterr().err


def test_replay_reads_cryptofeed_binance_like_native(tmp_path):
    """The real spot capture rewritten as cryptofeed raw files (stream lines + the REST snapshot in
    the .http. file) decodes to exactly the records of the native file (backtest / sim venue /
    replay server all read through read_capture)."""
    import dataclasses

    import numpy as np

    from livestack.config import BTCUSDT_SPOT
    from livestack.feeds.capture import decode_capture, is_snapshot
    from tests.conftest import data_dir

    d = data_dir()
    src = d / "binance" / "spot-btcusdt-20240808.gz" if d else None
    if src is None or not src.exists():
        pytest.skip("recorded data not found")
    lines = read_capture(src)
    ws, http = tmp_path / "BINANCE.ws.1.0", tmp_path / "BINANCE.http.0.0"

    def sec(ts):
        return f"{ts // 10**9}.{ts % 10**9:09d}"
    with open(ws, "w") as f, open(http, "w") as h:
        f.write(f"wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms <-> {sec(lines[0][0])}\n")
        for ts, m in lines:
            if is_snapshot(m):
                h.write(f"https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000 -> {sec(ts)}: {m.decode()}\n")
            else:
                f.write(f"{sec(ts)}: {m.decode()}\n")
    inst = dataclasses.replace(BTCUSDT_SPOT, qty_decimals=8)
    a = decode_capture(src, inst, "spot")
    b = decode_capture(ws, inst, "spot")
    assert len(a) == len(b) and np.array_equal(a, b)


@pytest.mark.parametrize("venue,gen,sym", [("okx", okx_session, "BTC-USDT"), ("kraken", kraken_session, "BTC/USD")])
def test_decode_capture_okx_kraken(tmp_path, venue, gen, sym):
    """decode_capture (backtest / sim venue capture market) takes OKX and Kraken captures too."""
    from livestack.config import Instrument
    from livestack.feeds.capture import book_from_records, decode_capture

    cap = tmp_path / "c.gz"
    write_livestack(cap, [(10**18 + i, m) for i, m in enumerate(gen(seed=3, n=50))])
    recs = decode_capture(cap, Instrument(5, sym, venue, 1, 8), venue)
    _, _, valid = book_from_records(recs)
    assert valid and (recs["seq"] == range(1, len(recs) + 1)).all() and (recs["instrument"] == 5).all()
