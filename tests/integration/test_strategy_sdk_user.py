"""Issue 13's done-when: what a new user does, from outside the package, through the CLI only.

Scaffold a strategy in a temp dir, backtest it on a shared capture, run it live for a few seconds
against the simulated market and venue (the embedded default instrument SIM), read its fills from the session file, then
make it raise and see the error reported: non-silent log line, ANOMALY STRATEGY_ERROR and the
message (ANOMALY_TEXT) in the records and `records summary`, the first traceback in the session file, the strategy disabled.
Finally `replay` refuses the first session because the strategy's source changed (--force runs it).
Nothing under livestack/ is touched: the strategy lives in the temp dir.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("LIVESTACK_DATA", ROOT.parent.parent / "shared" / "data"))
if not DATA.exists():
    DATA = pathlib.Path("/work/shared/data")
CAPTURE = DATA / "binance" / "usdm-btcusdt-20240808.gz"

pytestmark = [pytest.mark.slow, pytest.mark.realdata,
              pytest.mark.skipif(not CAPTURE.exists(), reason="needs the Binance USD-M capture")]


def _ls(cwd, *args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LIVESTACK_STRATEGY_CACHE=str(pathlib.Path(cwd) / ".cache"))
    return subprocess.run([sys.executable, "-m", "livestack.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


LIVE = """
[session]
name = "sdk-user"
records_dir = "{records}"
duration_s = 10.0
status_interval_s = 0.0

[strategy]
name = "{ref}"
on_error = "disable"
[strategy.params]
qty = "0.001"
max_position = "0.005"

[risk]
max_order_qty = 10
max_position = 100
price_band_ticks = 200
"""


def _session_file(records):
    files = sorted(glob.glob(os.path.join(records, "*", "*.h5")), key=os.path.getmtime)
    assert files, f"no session file under {records}"
    return files[-1]


def test_a_new_user_scaffolds_backtests_runs_live_and_sees_a_strategy_error(tmp_path):
    from livestack.records import open_session

    work = tmp_path / "my_strategies"
    r = _ls(tmp_path, "new-strategy", "my_quoter", "--dir", str(work))
    assert r.returncode == 0, r.stderr
    module = work / "my_quoter.py"
    ref = f"{module}:MyQuoter"
    assert module.exists() and (work / "test_my_quoter.py").exists()

    # backtest on the shared capture
    r = _ls(tmp_path, "backtest", "--data", str(CAPTURE), "--strategy", ref, "--config", str(work / "my_quoter.toml"),
            "--records", str(tmp_path / "bt"), "--json")
    assert r.returncode == 0, r.stderr
    bt = json.loads(r.stdout)
    assert bt["orders"] > 0 and bt["fills"] > 0, bt
    import h5py

    with h5py.File(bt["records"], "r") as h:
        ident = json.loads(h.attrs["strategy"])
    assert ident["ref"] == ref and ident["flavour"] == "python" and len(ident["sha256"]) == 64

    # live, a few seconds, simulated venue replaying the capture
    cfg = tmp_path / "live.toml"
    cfg.write_text(LIVE.format(records=tmp_path / "live1", ref=ref))
    r = _ls(tmp_path, "run", str(cfg), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    first = _session_file(tmp_path / "live1")
    with open_session(first) as s:
        fills = s["fill"]
        anomalies = s["anomaly"]
    assert len(fills) > 0, "the scaffolded strategy got no fills in the live run"
    assert "STRATEGY_ERROR" not in set(anomalies["code"])

    # a deliberate exception: reported, not silent
    # (on_trade: public trades come every few ms in the simulated market; a fill might not)
    module.write_text(module.read_text() + '\n    def on_trade(self, ctx, i):\n'
                      '        raise RuntimeError("deliberate: on_trade exploded")\n')
    cfg.write_text(LIVE.format(records=tmp_path / "live2", ref=ref))
    r = _ls(tmp_path, "run", str(cfg), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deliberate: on_trade exploded" in r.stderr, "no log line for the strategy error"
    second = _session_file(tmp_path / "live2")
    with open_session(second) as s:
        an = s["anomaly"]
        orders = s["order_state"]
    errs = an[an["code"] == "STRATEGY_ERROR"]
    assert len(errs) == 1, "disable: exactly one error, then the strategy is not called again"
    with h5py.File(second, "r") as h:
        report = json.loads(h.attrs["strategy_errors"])
    assert report["disabled"] and "RuntimeError: deliberate: on_trade exploded" in report["first_traceback"]
    assert report["errors"] == 1 and len(orders) > 0
    r = _ls(tmp_path, "records", "summary", second, "--json")
    summary = json.loads(r.stdout)
    assert summary["anomalies"].get("STRATEGY_ERROR") == 1, r.stdout
    # the message itself is in the records (ANOMALY_TEXT, next to the ANOMALY) and in the summary
    with open_session(second) as s:
        texts = s["anomaly_text"]
    assert list(texts["text"]) == ["RuntimeError: deliberate: on_trade exploded"]
    assert int(texts["hseq"].iloc[0]) == int(errs["hseq"].iloc[0]) and list(texts["action"]) == ["DISABLE"]
    assert [(m["message"], m["count"]) for m in summary["strategy_errors"]] == \
        [("RuntimeError: deliberate: on_trade exploded", 1)]
    assert summary["strategies"][0]["name"] == "MyQuoter" and summary["strategies"][0]["errors"] == 1
    r = _ls(tmp_path, "records", "summary", second)
    assert "RuntimeError: deliberate: on_trade exploded" in r.stdout, r.stdout

    # replay: the first session's strategy source changed since -> refused, --force runs it
    r = _ls(tmp_path, "replay", first)
    assert r.returncode != 0 and "changed since the session was recorded" in r.stderr, r.stderr
    r = _ls(tmp_path, "replay", first, "--force")
    assert r.returncode == 0, r.stderr
