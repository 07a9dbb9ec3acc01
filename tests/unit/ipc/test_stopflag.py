import multiprocessing as mp
import os
import signal
import threading
import time

from livestack.ipc.stopflag import StopFlag


def _spin_on(flag):
    while not flag.is_set():
        pass


def test_set_is_seen_by_a_spawned_process(procs):
    ctx = mp.get_context("spawn")
    flag = StopFlag(ctx)
    p = ctx.Process(target=_spin_on, args=(flag,))
    procs.append(p)
    p.start()
    time.sleep(0.2)
    flag.set()
    p.join(timeout=10)
    assert p.exitcode == 0


def test_a_reader_killed_mid_read_cannot_block_set(procs):
    """The failure mp.Event has: SIGKILL a process polling is_set(), then set() must not block."""
    ctx = mp.get_context("spawn")
    flag = StopFlag(ctx)
    p = ctx.Process(target=_spin_on, args=(flag,))
    procs.append(p)
    p.start()
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.join(timeout=10)
    setter = threading.Thread(target=flag.set, daemon=True)
    setter.start()
    setter.join(timeout=10)
    assert not setter.is_alive(), "set() blocked after a reader was killed"
    assert flag.is_set() and flag.wait(0.0)


def test_wait_times_out_when_not_set():
    flag = StopFlag(mp.get_context("spawn"))
    assert flag.wait(0.05) is False
    flag.set()
    flag.clear()
    assert not flag.is_set()
