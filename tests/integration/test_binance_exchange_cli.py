"""``livestack testing binance-exchange`` as a user runs it: a process that prints its endpoints,
serves them with the given keys and faults, and exits cleanly on SIGINT."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.realdata


def test_cli_serves_with_given_keys_and_exits_on_sigint(datadir):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LIVESTACK_DATA=str(datadir))
    cmd = [sys.executable, "-m", "livestack.cli", "testing", "binance-exchange", "--port", "0",
           "--capture", str(datadir / "binance" / "usdm-btcusdt-20240808.gz"),
           "--api-key", "cli-key", "--api-secret", "cli-secret", "--fault", "rest_fail:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=120), "no endpoints line"
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"port", "usdm"}  # the capture is USD-M: only that market is served
        base = info["usdm"]["rest"]
        with pytest.raises(urllib.error.HTTPError) as e:  # --fault rest_fail:1
            urllib.request.urlopen(base + "/fapi/v1/time", timeout=10)
        assert e.value.code == 503
        q = f"timestamp={int(time.time() * 1000)}"
        sig = hmac.new(b"cli-secret", q.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"{base}/fapi/v2/account?{q}&signature={sig}", headers={"X-MBX-APIKEY": "cli-key"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert "availableBalance" in json.loads(r.read())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
