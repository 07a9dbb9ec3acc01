"""The whole stack (``Supervisor``, simulated venue, real harness, writer) with its control surface
on tcp + CURVE as a TOML config would set it: the listed operator trades and kills through it,
anyone else gets nothing; the session file it leaves is owner-only and holds no secret path."""

from __future__ import annotations

import io
import json
import os
import socket
import stat

import h5py
import orjson
import pytest
import zmq

from livestack import cli
from livestack.control import auth
from livestack.control.client import ControlClient, ControlTimeout, ControlUnauthorized
from livestack.node import config
from livestack.node.supervisor import Supervisor
from livestack.secrets import REDACTED
from tests.waiting import running, wait_for

pytestmark = pytest.mark.slow


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stack_with_curve_control_serves_the_operator_only_and_leaves_a_private_file(tmp_path, capsys):
    kd = tmp_path / "keys"
    (spub, ssec), (opub, osec), (_, xsec) = (auth.keygen(str(kd), n) for n in ("server", "ops", "intruder"))
    records = tmp_path / "records"
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    cfg = config.validate({"session": {"records_dir": str(records), "status_interval_s": 0.0},
                           "control": {"endpoint": endpoint, "curve_secret_key": ssec,
                                       "curve_authorized_keys": [opub]}})
    sup = Supervisor(cfg, out=io.StringIO())
    sup.start()
    try:
        with ControlClient(endpoint, timeout=20, server_key=spub, keys=osec) as ops:
            wait_for(lambda: running(sup) and ops.status()["ok"], 60, "the control surface answering the operator")
            hseq = ops.status()["hseq"]
            with ControlClient(endpoint, timeout=3, server_key=spub, keys=xsec) as x:
                with pytest.raises((ControlUnauthorized, ControlTimeout)):
                    x.kill()
            ctx = zmq.Context()
            try:
                d = ctx.socket(zmq.DEALER)
                d.linger = 0
                d.connect(endpoint)
                d.send_multipart([b"", orjson.dumps({"id": 1, "cmd": "kill"})])
                assert not d.poll(2000)  # a plain client: no handshake, no reply
            finally:
                ctx.destroy(0)
            st = ops.status()["result"]
            assert st["kill_latched"] is False  # neither attempt reached the harness
            assert ops.kill()["result"]["kill_latched"] is True and ops.status()["hseq"] > hseq
            # the CLI with the operator's key files
            rc = cli.main(["ctl", "status", "--json", "--endpoint", endpoint, "--server-key", spub, "--keys", osec])
            assert rc == 0 and orjson.loads(capsys.readouterr().out)["result"]["kill_latched"] is True
            rc = cli.main(["ctl", "kill-reset", "--endpoint", endpoint, "--timeout", "2"])  # no keys
            assert rc == 2
    finally:
        sup.stop(timeout=30)
    path = sup.records_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(records).st_mode) == 0o700
    with h5py.File(path, "r") as f:
        stored = json.loads(f.attrs["config"])
    assert stored["control"]["curve_secret_key"] == REDACTED
    assert ssec.encode() not in open(path, "rb").read()
