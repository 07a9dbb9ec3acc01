"""Who can operate the stack: the control process over real ZeroMQ sockets, attacked.

The control process is spawned with a tcp endpoint on loopback, CURVE keys written by
``livestack ctl keygen`` and an allow list of one client; the harness is the STAND-IN of
``tests/unit/control/fake_harness.py`` (it mirrors the kill latch and its input sequence into the
telemetry block, so "nothing was executed" is checked on the harness's side, not on the reply).

Issue 12 ("Why"): tcp://127.0.0.1 was accepted without CURVE, so any local user (``nobody``)
could send ``kill``; the ZAP handler crashed on the first CURVE client when no allow list was set;
``{"cmd":"kill","args":[]}`` and other malformed requests were executed.
"""

from __future__ import annotations

import os
import select
import socket
import stat
import time

import orjson
import pytest
import zmq

from livestack.control import auth
from livestack.control.client import ControlClient, ControlTimeout, ControlUnauthorized, EventSubscriber
from tests.integration.test_control import Stack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("server", "client", "intruder"):
        out[name] = auth.keygen(str(d), name)  # (public .key, secret .key_secret)
    return out


@pytest.fixture
def tcp_stack(session, tmp_path, procs, keys):
    opts = {"endpoint": f"tcp://127.0.0.1:{_free_port()}", "pub_endpoint": f"tcp://127.0.0.1:{_free_port()}",
            "curve_secret_key": keys["server"][1], "curve_authorized_keys": [keys["client"][0]],
            "timeout_ms": 20000}  # a loaded CI machine must not turn a harness reply into a timeout
    s = Stack(session, tmp_path, procs, options=opts,
              client={"server_key": keys["server"][0], "keys": keys["client"][1]})
    yield s
    s.close()


def _untouched(stack, hseq_before: int) -> None:
    """Nothing reached the harness: no input consumed, kill not latched, orders still open."""
    assert stack.tel.gauge("hseq") == hseq_before
    assert stack.tel.gauge("kill_latched") == 0
    assert stack.client.orders()["result"]["count"] == 5


def _plain_kill(endpoint: str, wait_s: float) -> list:
    """A client without CURVE sends kill; the frames it got back (none expected)."""
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        s.linger = 0
        s.connect(endpoint)
        s.send_multipart([b"", orjson.dumps({"id": 1, "cmd": "kill"})])
        return s.recv_multipart() if s.poll(int(wait_s * 1000)) else []
    finally:
        ctx.destroy(0)


def test_authorized_curve_client_is_served(tcp_stack):
    r = tcp_stack.client.status()
    assert r["ok"] and r["result"]["kill_latched"] is False
    assert tcp_stack.client.kill()["result"]["kill_latched"] is True


def test_unauthorized_key_wrong_server_key_and_plain_clients_are_refused_and_nothing_runs(tcp_stack, keys):
    stack = tcp_stack
    stack.client.orders()
    before = stack.tel.gauge("hseq")
    # 1. a key pair the server does not list
    with ControlClient(stack.endpoint, timeout=3, server_key=keys["server"][0], keys=keys["intruder"][1]) as c:
        with pytest.raises((ControlUnauthorized, ControlTimeout)):
            c.kill()
    # 2. an authorized client that was given the wrong server key (a man in the middle's, say)
    with ControlClient(stack.endpoint, timeout=3, server_key=keys["intruder"][0], keys=keys["client"][1]) as c:
        with pytest.raises((ControlUnauthorized, ControlTimeout)):
            c.kill()
    # 3. no CURVE at all
    assert _plain_kill(stack.endpoint, 2.0) == []
    # 4. an ephemeral key (what a client gets when it knows only the server's public key)
    with ControlClient(stack.endpoint, timeout=3, server_key=keys["server"][0]) as c:
        with pytest.raises((ControlUnauthorized, ControlTimeout)):
            c.request("cancel-all")
    _untouched(stack, before)
    # the ZAP handler survived every refusal: the authorized client is still served (issue 12: it
    # crashed on the first CURVE client) and the process is alive
    assert stack.server.is_alive()
    assert stack.client.kill()["ok"] and stack.tel.gauge("kill_latched") == 1


def test_the_pub_socket_needs_an_authorized_key_too(tcp_stack, keys):
    stack = tcp_stack
    good = EventSubscriber(stack.pub_endpoint, server_key=keys["server"][0], keys=keys["client"][1])
    bad = EventSubscriber(stack.pub_endpoint, server_key=keys["server"][0], keys=keys["intruder"][1])
    try:
        got_good = got_bad = None
        deadline = time.monotonic() + 30
        while got_good is None and time.monotonic() < deadline:
            stack.client.status()  # publishes a "control" outcome
            got_good = got_good or good.next(0.2)
            got_bad = got_bad or bad.next(0.05)
        assert got_good is not None and got_good[0] == "control"
        for _ in range(5):
            stack.client.status()
            got_bad = got_bad or bad.next(0.1)
        assert got_bad is None  # fills, orders and state changes are not readable without a listed key
    finally:
        good.close()
        bad.close()


def test_refused_keys_are_reported_on_pub(tcp_stack, keys):
    stack = tcp_stack
    sub = EventSubscriber(stack.pub_endpoint, topics=("control",), server_key=keys["server"][0],
                          keys=keys["client"][1])
    intruder_pub = open(keys["intruder"][0]).read().split('public-key = "')[1][:40]
    try:
        seen = []
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            with ControlClient(stack.endpoint, timeout=0.3, server_key=keys["server"][0],
                               keys=keys["intruder"][1]) as c:
                try:
                    c.status()
                except (ControlUnauthorized, ControlTimeout):
                    pass
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                m = sub.next(0.05)
                if m and m[1].get("event") == "unauthorized":
                    seen.append(m[1])
        assert seen and seen[0]["client_key"] == intruder_pub
    finally:
        sub.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_another_local_user_cannot_reach_the_control_surface(session, tmp_path, procs, keys):
    """As ``nobody``: the ipc socket refuses the connection (0600), the tcp one the handshake."""
    from livestack.ipc import shm

    os.chmod(tmp_path, 0o755)  # let nobody reach the socket file itself: its own mode must stop it
    ipc = Stack(session, tmp_path, procs, options={"timeout_ms": 20000})
    tcp_ep = f"tcp://127.0.0.1:{_free_port()}"
    session2 = shm.new_session_id()
    tcp = None
    try:
        tcp = Stack(session2, tmp_path / "t", procs,
                    options={"endpoint": tcp_ep, "pub_endpoint": "-", "curve_secret_key": keys["server"][1],
                             "curve_authorized_keys": [keys["client"][0]], "timeout_ms": 20000},
                    client={"server_key": keys["server"][0], "keys": keys["client"][1]})
        assert stat.S_IMODE(os.stat(ipc.sock).st_mode) == 0o600
        before = (ipc.tel.gauge("hseq"), tcp.tel.gauge("hseq"))
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: become nobody, attack both endpoints, report, exit
            result = {}
            try:
                os.close(r)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                u = socket.socket(socket.AF_UNIX)
                try:
                    u.connect(ipc.sock)
                    result["ipc"] = "connected"
                except OSError as e:
                    result["ipc"] = e.__class__.__name__
                result["tcp"] = len(_plain_kill(tcp_ep, 2.0))
                result["uid"] = os.getuid()
            except BaseException as e:  # noqa: BLE001 - report, never return into pytest
                result["error"] = repr(e)
            os.write(w, orjson.dumps(result))
            os._exit(0)
        os.close(w)
        ready, _, _ = select.select([r], [], [], 60)
        assert ready, "the child did not report within 60 s"
        result = orjson.loads(os.read(r, 4096))
        os.close(r)
        os.waitpid(pid, 0)
        assert result == {"ipc": "PermissionError", "tcp": 0, "uid": 65534}, result
        assert (ipc.tel.gauge("hseq"), tcp.tel.gauge("hseq")) == before
        assert ipc.tel.gauge("kill_latched") == 0 and tcp.tel.gauge("kill_latched") == 0
    finally:
        ipc.close()
        if tcp is not None:
            tcp.close()
        shm.remove_session(session2)


def test_curve_without_an_allow_list_does_not_start(session, tmp_path, procs, keys):
    """Issue 12: the ZAP handler crashed on the first client when no allow list was set. Now such
    a server is refused before it binds (exit 2), and validate() refuses the config before that."""
    from livestack.control.server import run_process
    from tests.integration.test_control import CTX
    from livestack.ipc import Ring, segment_name
    from livestack.schema import RecordKind

    names = {n: segment_name(session, n) for n in ("cmd", "reply")}
    rings = [Ring.create(names["cmd"], 16, 128, RecordKind.CONTROL_CMD),
             Ring.create(names["reply"], 16, 128, RecordKind.CONTROL_REPLY)]
    try:
        spub, ssec = auth.read_secret_certificate(keys["server"][1])
        p = CTX.Process(target=run_process, args=(names["cmd"], names["reply"], None, None,
                                                  {"endpoint": f"tcp://127.0.0.1:{_free_port()}", "pub_endpoint": "-",
                                                   "curve_secret_key": ssec, "curve_public_key": spub}, None))
        procs.append(p)
        p.start()
        p.join(30)  # the old code served (and crashed at the first client): still running here
        assert p.exitcode == 2
    finally:
        for ring in rings:
            ring.close()


MALFORMED = [
    ("kill", []), ("kill", 0), ("kill", ""), ("kill", None), ("kill", 1), ("kill", "x"), ("kill", [1]),
    ("kill", True), ("kill", 1.5), ("kill", {"now": True}), ("kill", {"": 1}),
    ("session-stop", []), ("session-stop", ""), ("enable", []), ("kill-reset", 0), ("reduce-only", ""),
    ("cancel-all", []), ("cancel-all", 0), ("cancel-all", ""), ("cancel-all", {"instrument": True}),
    ("cancel-all", {"instrument": 1.0}), ("cancel-all", {"instrument": [1]}), ("cancel-all", {"instrument": {}}),
    ("cancel-all", {"symbol": "SIM1"}), ("cancel-all", {"instrument": 1, "x": 2}),
    ("set-limit", []), ("set-limit", {}), ("set-limit", {"limit": "max_position"}),
    ("set-limit", {"value": 1}), ("set-limit", {"limit": True, "value": 1}),
    ("set-limit", {"limit": "max_position", "value": 1.5}), ("set-limit", {"limit": "max_position", "value": None}),
    ("set-limit", {"limit": "max_position", "value": [1]}), ("set-limit", {"limit": "max_position", "value": True}),
    ("set-limit", {"limit": "max_position", "value": 1, "extra": 0}), ("set-limit", {"limit": [], "value": 1}),
    ("config", []), ("config", {}), ("config", {"set": {}}), ("config", {"set": []}), ("config", {"set": "x"}),
    ("config", {"set": {"risk.max_position": 1.5}}), ("config", {"set": {"risk.max_position": None}}),
    ("config", {"set": {"risk.max_position": [1]}}), ("config", {"set": {"risk.max_position": {}}}),
    ("config", {"set": {"risk.max_position": 1}, "instrument": True}), ("config", {"sett": {"a": 1}}),
    ("orders", []), ("orders", {"instrument": False}), ("positions", ""), ("metrics", 0), ("status", []),
]


@pytest.fixture
def ipc_stack(session, tmp_path, procs):
    s = Stack(session, tmp_path, procs, options={"timeout_ms": 20000})
    yield s
    s.close()


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_malformed_arguments_get_bad_arguments_and_nothing_is_executed(transport, request):
    """``{"cmd":"kill","args":[]}`` was executed (``args or {}``); now every malformed request in
    the table is answered ``bad_arguments`` and the harness sees nothing."""
    stack = request.getfixturevalue(f"{transport}_stack")
    stack.client.orders()
    before = stack.tel.gauge("hseq")
    for i, (cmd, args) in enumerate(MALFORMED):
        r = stack.client.request_raw(orjson.dumps({"id": i, "cmd": cmd, "args": args}), i)
        assert r["ok"] is False and r["error"] == "bad_arguments" and r["message"], (cmd, args, r)
    _untouched(stack, before)
    assert stack.client.request("kill", {})["ok"]  # the well-formed request still works
