"""What a careless operator does, and what livestack now does (issue 18, each bullet of "Why").

Each case drives the real ``livestack`` command in a subprocess (unique session, short
``--duration``, hard timeouts, per-test CPU-lock and stacks-registry folder) and asserts the clear
error or the behaviour, and the exit code. Index of the cases, by bullet:

1. config errors in tables found late, exit 0 -- here: ``test_config_errors_inside_tables_...``
   (feed option typo with "did you mean", strategy param type, metrics_port 99999, missing
   capture file: 4 errors, exit 2, nothing started; ``config check`` the same),
   ``test_config_show_...``, ``test_session_name_...``; tests/integration/test_operator_exit.py:
   ``test_strategy_that_cannot_load_...``, ``test_strategy_param_typo_...``,
   ``test_clean_stop_after_duration_exits_0`` (session.name in the records file name).
2. ``run | head``, SIGHUP, prints -- test_operator_exit.py: ``test_stdout_closed_by_head_...``
   (exit 141, nothing left), ``test_second_stack_..._sighup_stops_in_order`` (exit 129); here:
   ``test_log_json_...`` (logging, JSON lines, the session log file) and
   ``test_fix_venue_that_cannot_log_on_...`` (exit 1 with the reason).
3. nothing at start says where things are -- test_operator_exit.py:
   ``test_clean_stop_after_duration_exits_0`` (session, records, control, metrics, CPUs); here the
   log file line in ``test_log_json_...``.
4. CPU taken, metrics port taken, SIGKILLed harness -- test_operator_exit.py:
   ``test_second_stack_on_the_same_harness_cpu_is_refused_...`` (exit 2),
   ``test_metrics_port_in_use_is_refused`` (exit 2), ``test_sigkilled_harness_fails_the_session``
   (exit 1).
5. launch-pinned.sh -- tests/unit/node/test_launch_pinned.py (unknown flag, conflicts, --dry-run,
   no temp file).
6. backtest UX -- issue 18.6, another branch's tests (tests/realdata/test_backtest_cli.py).
7. set-limit units, top marks / processes / STOPPED / PnL currency -- here:
   ``test_set_limit_units_and_top_...``; issue 17.7 ``livestack ls``:
   ``test_ls_lists_the_running_stack_...``, ``test_ctl_and_top_without_a_stack_...``.
8. hand-written validation -- ``livestack/node/schema.py`` (msgspec), tests/unit/node/test_config.py.
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


# -- bullet 7: ctl set-limit units; top marks, every process, STOPPED, PnL currency -----------
def test_set_limit_units_and_top_shows_marks_every_process_currency_and_stopped(tmp_path):
    live = Live(tmp_path, _config(tmp_path), "--duration", "90")
    top = None
    try:
        wait_for(live.started, timeout=60, what="stack started")
        session, pids = _session_and_pids(live.started())
        wait_for(lambda: session in _cli(tmp_path, "ls").stdout, timeout=30, what="the stack in livestack ls")
        r = _cli(tmp_path, "ctl", "set-limit", "max_position", "5 SIM")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "risk.max_position = 5 SIM (5000 fixed-point units)" in r.stdout
        r = _cli(tmp_path, "ctl", "set-limit", "max_position", "7")  # a bare number: read in, and said in, the unit
        assert r.returncode == 0 and "risk.max_position = 7 SIM (7000 fixed-point units)" in r.stdout, r.stdout
        r = _cli(tmp_path, "ctl", "set-limit", "max_position", "100 USD")
        assert r.returncode == 1 and "max_position is counted in SIM for SIM (its base currency), not USD" in r.stdout
        r = _cli(tmp_path, "ctl", "set-limit", "price_band_bps", "0.5%")
        assert r.returncode == 0 and "risk.price_band_bps = 0.5% (50 fixed-point units)" in r.stdout, r.stdout

        def top_once():
            t = _cli(tmp_path, "top", "--once", "--interval", "0.2")
            return t.stdout if t.returncode == 0 and " USD" in t.stdout and "no book yet" not in t.stdout else None

        wait_for(lambda: top_once() is not None, timeout=60, what="top with a mark price")
        out = _cli(tmp_path, "top", "--once", "--interval", "0.2").stdout
        assert re.search(r"SIM\s.*\d+\.\d+ SIM\s.*\d+\.\d+ USD\s.*USD\s.*USD", out), out  # qty, mark, PnL
        for proc in ("harness", "writer", "venue", "control", "supervisor"):
            assert re.search(rf"\b{proc}\W+\d+", out), (proc, out)
        top = subprocess.Popen([sys.executable, "-m", "livestack.cli", "top", "--interval", "0.2"], cwd=ROOT,
                               env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def top_attached():  # its mapping of the session's telemetry block
            try:
                with open(f"/proc/{top.pid}/maps") as f:
                    return f"{session}.telemetry" in f.read()
            except OSError:
                return False

        wait_for(top_attached, timeout=60, what="top attached to the telemetry block")
        live.proc.send_signal(2)
        assert live.proc.wait(timeout=90) == sv.EXIT_OK
        out, err = top.communicate(timeout=60)  # top ends by itself when the stack ends
        assert top.returncode == 0, err
        assert "STOPPED" in out, out
        _assert_nothing_left(session, pids)
    finally:
        live.kill()
        if top is not None and top.poll() is None:
            top.kill()


# -- bullet 2 (second half): logging instead of bare prints -----------------------------------
def test_log_json_and_the_session_log_file_next_to_the_records(tmp_path):
    r = subprocess.run([sys.executable, "-m", "livestack.cli", "--log-level", "INFO", "--log-json", "run",
                        _config(tmp_path), "--duration", "1"], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == sv.EXIT_OK, r.stdout + r.stderr
    session, _ = _session_and_pids(_started(r.stdout.splitlines()))
    lines = [json.loads(ln) for ln in r.stderr.splitlines() if ln.startswith("{")]
    assert lines and all(x["session"] == session for x in lines), r.stderr
    procs = {x["process"] for x in lines}
    assert {"supervisor", "control"} <= procs, procs
    logs = list((tmp_path / "records").glob(f"*/{session}.log"))
    assert len(logs) == 1 and logs[0].with_suffix(".h5").exists()  # next to its records
    text = logs[0].read_text()
    assert f"session {session} started" in text and '"process": "control"' in text  # several processes
    assert re.search(rf"^  log       {re.escape(str(logs[0]))}$", r.stdout, re.M)  # said at start


def test_ctl_and_top_without_a_stack_say_so_and_exit_2(tmp_path):
    env_dir = tmp_path / "nothing"
    env_dir.mkdir()
    r = subprocess.run([sys.executable, "-m", "livestack.cli", "ctl", "status"], cwd=env_dir,
                       env=dict(_env(tmp_path), LIVESTACK_STACKS_DIR=str(env_dir / "stacks"), TMPDIR=str(env_dir)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no running livestack stack found on this host (livestack ls)" in r.stderr, r.stderr
    r = _cli(tmp_path, "top", "--once", "--stack", "nosuchstack")
    assert r.returncode == 2 and "no livestack stack is running on this host" in r.stderr, r.stderr
    r = _cli(tmp_path, "ls")
    assert r.returncode == 0 and "no livestack stack is running on this host" in r.stdout
