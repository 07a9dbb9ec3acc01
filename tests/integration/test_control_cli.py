"""``livestack ctl`` against a control process and the harness STAND-IN (see test_control.py)."""

import orjson
import pytest

from livestack import cli
from tests.integration.test_control import Stack


@pytest.fixture
def stack(session, tmp_path, procs):
    s = Stack(session, tmp_path, procs)
    yield s
    s.close()


def ctl(capsys, *argv):
    rc = cli.main(["ctl", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_ctl_json_and_tables(stack, capsys):
    ep = stack.endpoint
    rc, out, _ = ctl(capsys, "status", "--endpoint", ep, "--json")
    assert rc == 0 and orjson.loads(out)["result"]["trading_state"] == "HALTED"
    rc, out, _ = ctl(capsys, "--endpoint", ep, "session-start")
    assert rc == 0 and "ok session-start" in out and "ACTIVE" in out
    rc, out, _ = ctl(capsys, "--endpoint", ep, "orders")
    assert rc == 0 and "open orders (5)" in out and "SIM1" in out
    rc, out, _ = ctl(capsys, "kill", "--endpoint", ep)
    assert rc == 0 and "5 order(s) canceled" in out and "kill latched" in out
    rc, out, _ = ctl(capsys, "enable", "--endpoint", ep)
    assert rc == 1 and "not_allowed" in out
    rc, out, _ = ctl(capsys, "config", "strategy.params.0=3", "risk.max_position=2.5", "--instrument", "SIM1",
                     "--endpoint", ep, "--json")
    r = orjson.loads(out)
    assert rc == 0 and r["result"]["version"] == 1 and r["result"]["applied"][1]["value"] == 2500
    rc, out, _ = ctl(capsys, "set-limit", "max_open_orders", "4", "--endpoint", ep)
    assert rc == 0 and "config version 2" in out
    rc, out, _ = ctl(capsys, "positions", "--endpoint", ep)
    assert rc == 0 and "1.500" in out
    rc, out, _ = ctl(capsys, "metrics", "--endpoint", ep)
    assert rc == 0 and "latency by stage" in out


def test_ctl_times_out_on_a_dead_stack(tmp_path, capsys):
    rc, _, err = ctl(capsys, "status", "--endpoint", f"ipc://{tmp_path}/none.sock", "--timeout", "0.3")
    assert rc == 2 and "no reply" in err


def test_ctl_keygen_writes_a_certificate_pair(tmp_path, capsys):
    rc, out, _ = ctl(capsys, "keygen", str(tmp_path / "keys"), "--name", "ops")
    assert rc == 0 and (tmp_path / "keys" / "ops.key").exists() and (tmp_path / "keys" / "ops.key_secret").exists()


def test_ctl_events_prints_published_state_changes(stack, capsys):
    import threading
    import time

    from livestack.control.client import ControlClient

    rc = {}
    t = threading.Thread(target=lambda: rc.setdefault("rc", cli.main(
        ["ctl", "events", "--endpoint", stack.endpoint, "--topic", "trading_state", "--count", "1",
         "--seconds", "20", "--json"])))
    t.start()
    time.sleep(1.0)  # slow joiner
    with ControlClient(stack.endpoint, timeout=5) as c:
        deadline = time.monotonic() + 15
        while t.is_alive() and time.monotonic() < deadline:  # toggle until the subscriber has seen one
            c.session_start()
            c.disable()
            t.join(0.5)
    t.join(20)
    out = capsys.readouterr().out
    assert rc.get("rc") == 0
    ev = orjson.loads(out.strip().splitlines()[-1])
    assert ev["topic"] == "trading_state" and ev["state"] in ("ACTIVE", "HALTED")
