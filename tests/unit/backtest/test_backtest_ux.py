"""``livestack backtest`` as a careless user runs it (issue 18.6): each "Why" case, its message and exit code.

Small captures are written here (Binance layout: ``<ns> <json>`` lines) so the cases are fast and
exact; tests/realdata covers the shared captures (defaults that trade, replay --verify of the file).
"""

from __future__ import annotations

import gzip
import json

import pytest

from livestack.cli import main

pytest.importorskip("livestack.backtest.sim")


def _write(path, msgs):
    with gzip.open(path, "wt") as f:
        for i, m in enumerate(msgs):
            f.write(f"{1_723_161_240_000_000_000 + i * 1_000_000} {json.dumps(m)}\n")
    return str(path)


def _diff(U, u, bid, ask, usdm=False, prev=None):
    d = {"e": "depthUpdate", "E": 1723161240000 + u, "s": "BTCUSDT", "U": U, "u": u,
         "b": [[f"{bid:.2f}", "1.000"]], "a": [[f"{ask:.2f}", "1.000"]]}
    if usdm:
        d["T"] = d["E"]
        d["pu"] = prev if prev is not None else U - 1
    return {"stream": "btcusdt@depth", "data": d}


def _snapshot(last):
    return {"lastUpdateId": last, "bids": [["60000.00", "2.000"], ["59999.00", "1.000"]],
            "asks": [["60001.00", "2.000"], ["60002.00", "1.000"]]}


@pytest.fixture
def usdm_capture(tmp_path):
    msgs = [_diff(100, 101, 60000.0, 60001.0, True, 99), _snapshot(100)]
    prev = 101
    for k in range(60):
        u = 102 + k
        msgs.append(_diff(u, u, 60000.0 - (k % 3), 60001.0 + (k % 2), True, prev))
        prev = u
    return _write(tmp_path / "usdm-mini.gz", msgs)


@pytest.fixture
def spot_capture(tmp_path):
    msgs = [_diff(100, 101, 60000.0, 60001.0), _snapshot(100)]
    for k in range(60):
        u = 102 + k
        msgs.append(_diff(u, u, 60000.0 - (k % 3), 60001.0 + (k % 2)))
    return _write(tmp_path / "spot-mini.gz", msgs)


def run(capsys, *argv):
    rc = main(["backtest", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_capture_of_another_market_is_an_error_that_names_the_right_market(spot_capture, capsys, tmp_path):
    rc, out, err = run(capsys, "--data", spot_capture, "--market", "usdm", "--strategy", "mm_cy", "--no-records")
    assert rc == 2
    assert "is a Binance spot capture" in err and "--market spot" in err
    assert "Traceback" not in err + out


def test_a_capture_without_a_snapshot_is_an_error_not_events_1(tmp_path, capsys):
    msgs = [_diff(100 + k, 100 + k, 60000.0, 60001.0, True, 99 + k) for k in range(20)]
    data = _write(tmp_path / "nosnap.gz", msgs)
    rc, out, err = run(capsys, "--data", data, "--strategy", "mm_cy", "--no-records")
    assert rc == 2 and "no order-book snapshot" in err and "Traceback" not in err


def test_a_capture_that_yields_no_events_is_an_error(tmp_path, capsys):
    data = _write(tmp_path / "other.gz", [{"stream": "x", "data": {"e": "kline", "s": "ETHUSDT"}}] * 5)
    rc, out, err = run(capsys, "--data", data, "--strategy", "mm_cy", "--no-records")
    assert rc == 2 and ("no market events" in err or "is for ETHUSDT" in err) and "Traceback" not in err


def test_a_file_that_is_not_a_capture_is_an_error(tmp_path, capsys):
    p = tmp_path / "notes.txt"
    p.write_text("hello world\n")
    rc, out, err = run(capsys, "--data", str(p), "--no-records")
    assert rc == 2 and "is not '<receive ns> <json>'" in err
    rc, out, err = run(capsys, "--data", str(tmp_path / "missing.gz"), "--no-records")
    assert rc == 2 and "no such file" in err


def test_config_takes_the_run_file_and_its_errors_are_messages(usdm_capture, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[strategy]\nname = "mm_cy"\n[sesion]\nname = "x"\n')
    rc, out, err = run(capsys, "--data", usdm_capture, "--config", str(bad), "--no-records")
    assert rc == 2 and "unknown key 'sesion'" in err and "Traceback" not in err
    rc, out, err = run(capsys, "--data", usdm_capture, "--config", str(tmp_path / "nope.toml"), "--no-records")
    assert rc == 2 and "does not exist" in err
    good = tmp_path / "run.toml"  # a file `livestack run` takes: [strategy], [risk], [harness], [venue.options]
    good.write_text('[strategy]\nname = "taker_cy"\n[strategy.params]\nthreshold = 1\n'
                    '[harness]\nbook_top_levels = 0\n[venue.options]\norder_latency_ns = 1000\n')
    rc, out, err = run(capsys, "--data", usdm_capture, "--config", str(good), "--json", "--no-records")
    assert rc == 0, err
    s = json.loads(out)
    assert s["strategy"] == "taker_cy" and s["market"] == "usdm" and s["md_events"] > 60


def test_progress_bar_shows_events_per_second_and_eta(usdm_capture, capsys):
    rc, out, err = run(capsys, "--data", usdm_capture, "--strategy", "mm_cy", "--no-records", "--progress")
    assert rc == 0, err
    assert "events/s" in err and "ETA" in err and "backtest" in err


def test_spot_defaults_quote_whole_lots_so_orders_are_not_bad_qty(spot_capture, capsys):
    rc, out, err = run(capsys, "--data", spot_capture, "--strategy", "mm_cy", "--no-records", "--json")
    assert rc == 0, err
    s = json.loads(out)
    assert s["market"] == "spot"  # detected
    assert s["orders"] > 0 and "BAD_QTY" not in (s["denials_by_reason"] or {}), s["denials_by_reason"]


def test_backtest_writes_a_session_file_that_replays_bit_identically(usdm_capture, tmp_path, capsys):
    from livestack.records.replay import replay

    rc, out, err = run(capsys, "--data", usdm_capture, "--strategy", "mm_cy", "--records", str(tmp_path / "rec"),
                       "--json")
    assert rc == 0, err
    s = json.loads(out)
    path = s["records"]
    assert main(["records", "summary", path]) == 0
    summ = capsys.readouterr().out
    assert "contiguous, nothing lost" in summ and "journal_md_level" in summ
    r = replay(path, verify=True)
    assert r.verified, r.divergence
    assert r.inputs == s["events"]
    from livestack.records import open_session

    with open_session(path) as sess:
        assert sess.attrs["mode"] == "backtest" and json.loads(sess.attrs["strategy"])["ref"] == "mm_cy"
        assert sess.attrs["config"]["strategy"]["name"] == "mm_cy"
        assert len(sess["md_level"]) > 0 and len(sess["journal"]) == s["events"]


def test_an_unknown_strategy_or_param_is_a_message_not_a_traceback(usdm_capture, tmp_path, capsys):
    rc, out, err = run(capsys, "--data", usdm_capture, "--strategy", "mm_cyy", "--no-records")
    assert rc == 2 and "unknown strategy" in err and "did you mean 'mm_cy'" in err and "Traceback" not in err
    cfg = tmp_path / "p.toml"
    cfg.write_text('[strategy]\nname = "mm_cy"\n[strategy.params]\nquote_qtty = 5\n')
    rc, out, err = run(capsys, "--data", usdm_capture, "--config", str(cfg), "--no-records")
    assert rc == 2 and "quote_qtty" in err and "Traceback" not in err


def test_ctrl_c_stops_the_run_with_exit_130_and_writes_no_file(usdm_capture, tmp_path, capsys, monkeypatch):
    def interrupt(md_done, inputs):
        raise KeyboardInterrupt

    import livestack.backtest.session as bs

    real = bs.run
    monkeypatch.setattr(bs, "run", lambda md, cfg, **kw: real(md, cfg, **dict(kw, progress=interrupt)))
    rc, out, err = run(capsys, "--data", usdm_capture, "--strategy", "mm_cy", "--records", str(tmp_path / "r"))
    assert rc == 130 and "interrupted" in err and "Traceback" not in err
    assert not list((tmp_path / "r").rglob("*.h5")) if (tmp_path / "r").exists() else True


def test_the_progress_callback_is_called_during_the_run_and_can_stop_it(usdm_capture):
    from livestack.backtest import session as bs
    from livestack.backtest.sim import run as sim_run
    from livestack.feeds.capture import decode_capture
    from livestack.harness.process import build_core
    from livestack.node import config as cfgmod

    cfg = bs.backtest_config(None, "mm_cy", "usdm", "BTCUSDT")
    md = decode_capture(usdm_capture, cfgmod.instruments(cfg)[0], "usdm")
    seen = []
    sim_run(build_core(cfg), md, progress=lambda k, n: seen.append(k), progress_every=10)
    assert seen[:3] == [10, 20, 30] and seen[-1] == len(md)
    calls = []

    def stop(k, n):
        calls.append(k)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sim_run(build_core(cfg), md, progress=stop, progress_every=10)
    assert calls == [10]  # stopped at the first call, mid-run


def test_the_run_config_of_a_capture_replay_backtests_that_capture(usdm_capture, tmp_path, capsys):
    cfg = tmp_path / "replay.toml"  # what `livestack run` takes to replay a capture through the sim venue
    cfg.write_text('[strategy]\nname = "mm_cy"\n[venue]\nkind = "sim"\n[venue.options]\nmarket = "capture"\n'
                   f'capture_path = "{usdm_capture}"\ncapture_market = "usdm"\nreplay_speed = 20.0\n'
                   'order_latency_ns = 50000\n')
    rc, out, err = run(capsys, "--config", str(cfg), "--no-records", "--json")
    assert rc == 0, err
    assert json.loads(out)["md_events"] > 60
    rc, out, err = run(capsys, "--no-records")
    assert rc == 2 and "give --data FILE" in err
