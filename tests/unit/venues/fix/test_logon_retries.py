"""A FIX session that cannot log on gives up after ``logon_retries`` and says why (issue 18.2)."""

import socket

import pytest

from livestack.venues.fix.adapter import FixAdapter, LogonFailed
from tests.waiting import wait_for


def _dead_port() -> int:
    with socket.socket() as s:  # bound, never listening, then closed: nobody answers there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("retries", [0, 2])
def test_a_venue_nobody_answers_gives_up_after_its_retries(tmp_path, retries):
    from livestack.config import Instrument

    port = _dead_port()
    ad = FixAdapter([Instrument(1, "X")], {"port": port, "store_dir": str(tmp_path), "logon_retries": retries,
                                           "reconnect_min_s": 0.01, "reconnect_max_s": 0.02})
    ad.start()
    s = ad.session
    if retries == 0:  # 0: retry forever
        wait_for(lambda: ad.service(0) is not None and s.stats["connects"] >= 5, timeout=30, what="reconnects")
        assert not s.gave_up
        ad.stop()
        return

    got = []

    def gave_up():
        try:
            ad.service(0)
        except LogonFailed as e:
            got.append(e)
        return bool(got)

    wait_for(gave_up, timeout=30, what="the session to give up")
    e = got[0]
    assert e.fatal is True  # the supervisor stops the session on it
    assert f"could not log on to 127.0.0.1:{port} after 3 attempts (logon_retries = 2" in str(e)
    assert s.stats["connects"] == 3 and not s.enabled
    ad.stop()
