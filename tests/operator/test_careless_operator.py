"""What a careless operator does, and what livestack now does (issue 18, "Why" bullets).

Each case drives the real ``livestack`` command in a subprocess (unique session, short
``--duration``, hard timeouts, per-test CPU-lock folder) and asserts the clear error or the
behaviour, and the exit code. Cases of bullets 2 and 4/5 that need a whole running stack live in
``tests/integration/test_operator_exit.py`` (reused here via its helpers).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from livestack.node import supervisor as sv
from tests.integration.test_operator_exit import ROOT, Live, _assert_nothing_left, _config, _env, _run, \
    _session_and_pids, _started
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def _cli(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livestack.cli", *args], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- bullet 1: config errors inside tables surface late, exit 0 -------------------------------
BAD_TABLES = """
[feed]
kind = "binance"
[feed.options]
ws_ur = "wss://example.invalid/ws"
[strategy]
name = "mm_cy"
params = {quote_qty = "10"}
[telemetry]
metrics_port = 99999
[venue]
kind = "sim"
[venue.options]
market = "capture"
capture_path = "/nonexistent/capture.gz"
"""


def test_config_errors_inside_tables_are_all_refused_before_anything_starts(tmp_path):
    cfg = _config(tmp_path, BAD_TABLES)
    r = _run(tmp_path, cfg, "--duration", "5")
    assert r.returncode == sv.EXIT_REFUSED, r.stdout + r.stderr
    assert "started" not in r.stdout
    err = r.stderr
    assert "4 problems" in err, err  # one error per problem, each with its TOML path
    assert "unknown key 'feed.options.ws_ur' (did you mean 'ws_url'?" in err
    assert "'strategy.params.quote_qty' must be int, got str '10'" in err
    assert "'telemetry.metrics_port' must be <= 65535, got 99999" in err
    assert "'venue.options.capture_path' = '/nonexistent/capture.gz': no such file" in err
    # `config check` says the same, with the same exit code
    c = _cli(tmp_path, "config", "check", cfg)
    assert c.returncode == sv.EXIT_REFUSED and "4 problems" in c.stderr


def test_config_show_prints_every_default_and_redacts_secrets(tmp_path):
    cfg = _config(tmp_path, '[venue]\nkind = "fix"\n[venue.options]\npassword = "hunter2"\nport = 9999\n')
    r = _cli(tmp_path, "config", "show", cfg)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert "hunter2" not in r.stdout
    assert shown["venue"]["options"]["port"] == 9999
    assert shown["venue"]["options"]["logon_retries"] == 5          # the kind's defaults filled in
    assert shown["harness"]["batch"] == 64 and shown["telemetry"]["metrics_port"] == 0


def test_session_name_is_used_in_the_records_file_name(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[session]\nname = "../etc/x"\n')
    r = _cli(tmp_path, "config", "check", str(bad))
    assert r.returncode == sv.EXIT_REFUSED and "'session.name' = '../etc/x'" in r.stderr
    # used: tests/integration/test_operator_exit.py::test_clean_stop_after_duration_exits_0


# -- bullet 2: a venue that cannot log on -----------------------------------------------------
def test_fix_venue_that_cannot_log_on_stops_the_session_non_zero(tmp_path):
    port = _dead_port()
    extra = (f'[venue]\nkind = "fix"\n[venue.options]\nport = {port}\nstore_dir = "{tmp_path / "fix"}"\n'
             'logon_retries = 2\nreconnect_min_s = 0.05\nreconnect_max_s = 0.1\n'
             '[[instruments]]\nid = 1\nsymbol = "SIM"\nvenue = "fix"\n')
    r = _run(tmp_path, _config(tmp_path, extra), "--duration", "60", timeout=120)
    assert r.returncode == sv.EXIT_FAILED, r.stdout + r.stderr
    assert f"could not log on to 127.0.0.1:{port} after 3 attempts (logon_retries = 2" in r.stderr
    line = _started(r.stdout.splitlines())
    if line:
        _assert_nothing_left(*_session_and_pids(line))


# -- issue 17.7: livestack ls, and ctl/top/metrics find the stack through it ------------------
def test_ls_lists_the_running_stack_and_ctl_top_metrics_find_it_from_anywhere(tmp_path):
    live = Live(tmp_path, _config(tmp_path), "--duration", "60")
    try:
        wait_for(live.started, timeout=60, what="stack started")
        session, pids = _session_and_pids(live.started())
        wait_for(lambda: session in _cli(tmp_path, "ls").stdout, timeout=30, what="the stack in livestack ls")
        entries = json.loads(_cli(tmp_path, "ls", "--json").stdout)
        (e,) = [x for x in entries if x["session"] == session]
        assert e["supervisor_pid"] == live.proc.pid and set(e["pids"]) >= {"harness", "venue", "writer", "control"}
        assert e["control"].startswith("ipc://") and e["records"].endswith(f"{session}.h5")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()  # not the directory the stack runs in: ctl used to look only in ./records
        st = subprocess.run([sys.executable, "-m", "livestack.cli", "ctl", "--stack", session, "--json", "status"],
                            cwd=elsewhere, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["ok"] is True
        bad = _cli(tmp_path, "ctl", "--stack", "nosuchstack", "status")
        assert bad.returncode == 2 and "no running stack named 'nosuchstack'" in bad.stderr
        m = _cli(tmp_path, "metrics", "--once", "--stack", session)
        assert m.returncode == 0 and "livestack_" in m.stdout
        live.proc.send_signal(2)
        assert live.proc.wait(timeout=90) == sv.EXIT_OK
        assert session not in _cli(tmp_path, "ls").stdout
        _assert_nothing_left(session, pids)
    finally:
        live.kill()
