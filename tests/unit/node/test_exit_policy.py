"""How the supervisor ends a session (issue 18.2), without processes: which child exits are
fatal, the exit code that results, and that a crash loop stops instead of restarting forever."""

from __future__ import annotations

import io
import signal

from livestack.node import config
from livestack.node import supervisor as sv


class _Exited:
    def __init__(self, code):
        self.exitcode = code
        self.pid = 0

    def is_alive(self):
        return False


def _sup():
    return sv.Supervisor(config.validate({}), out=io.StringIO())


def test_a_harness_that_ended_by_itself_is_a_clean_end():
    sup = _sup()
    sup.procs["harness"] = sv.Managed("harness", None, 1, (), restart=False, proc=_Exited(0))
    assert not sup.poll()
    assert sup.failure is None and sup.end_code == sv.EXIT_OK


def test_a_killed_harness_fails_the_session_naming_the_signal():
    sup = _sup()
    sup.procs["harness"] = sv.Managed("harness", None, 1, (), restart=False, proc=_Exited(-signal.SIGKILL))
    assert not sup.poll()
    assert sup.end_code == sv.EXIT_FAILED and "harness killed by SIGKILL" in sup.failure


def test_a_harness_refused_its_cpu_is_a_refused_start():
    sup = _sup()
    sup.procs["harness"] = sv.Managed("harness", None, 1, (), restart=False, proc=_Exited(sv.EXIT_CHILD_FATAL))
    assert not sup.poll()
    assert sup.end_code == sv.EXIT_REFUSED


def test_a_child_that_reports_a_fatal_error_is_not_restarted():
    sup = _sup()
    sup.procs["monitor"] = sv.Managed("monitor", None, -1, (), proc=_Exited(sv.EXIT_CHILD_FATAL),
                                      why="OSError: [Errno 98] Address already in use")
    assert not sup.poll()
    assert sup.end_code == sv.EXIT_FAILED
    assert sup.failure == "monitor exited with code 3: OSError: [Errno 98] Address already in use"


def test_a_crash_loop_stops_the_session_instead_of_restarting_forever(monkeypatch):
    sup = _sup()
    m = sv.Managed("control", None, -1, (), proc=_Exited(1))
    sup.procs["control"] = m
    monkeypatch.setattr(sup, "_spawn", lambda m: setattr(m, "started", sv.time.monotonic()))
    m.started = sv.time.monotonic()
    for i in range(sv.MAX_QUICK_FAILS - 1):
        assert sup.poll()          # schedules the restart
        m.next_restart = 1e-9      # due now
        assert sup.poll()          # restarts (the fake "restarted" child fails again at once)
    assert not sup.poll()
    assert sup.end_code == sv.EXIT_FAILED and "control failed 5 times in a row" in sup.failure


def test_a_process_that_ran_a_while_before_failing_is_restarted():
    sup = _sup()
    m = sv.Managed("venue", None, -1, (), proc=_Exited(1), quick_fails=sv.MAX_QUICK_FAILS - 1)
    m.started = sv.time.monotonic() - sv.QUICK_FAIL_S - 1
    sup.procs["venue"] = m
    assert sup.poll() and m.quick_fails == 0 and m.next_restart > 0


def test_a_session_name_that_cannot_be_a_file_name_is_a_config_error():
    import pytest

    with pytest.raises(config.ConfigError, match="session.name"):
        config.validate({"session": {"name": "../etc/x"}})
    assert config.validate({"session": {"name": "desk-a"}})["session"]["name"] == "desk-a"


def test_a_strategy_name_that_does_not_exist_is_a_config_error_with_a_suggestion():
    import pytest

    with pytest.raises(config.ConfigError, match="'strategy.name' = 'mm_c': unknown strategy \\(did you mean 'mm_cy'\\?\\)"):
        config.validate({"strategy": {"name": "mm_c"}})
