"""Python client of the control surface: one method per command, with timeouts.

A DEALER socket (REQ envelope: an empty delimiter frame) and a poll with a deadline: a dead or
absent stack gives :class:`ControlTimeout` after ``timeout`` seconds, never a hang. After a
timeout the socket is closed (linger 0) and a fresh one is made for the next request, so a late
reply can never be taken for the answer to a later request (replies are matched by id anyway).

With CURVE (``server_key`` given) the client watches its socket's handshake events: a server that
rejects our key gives :class:`ControlUnauthorized` at once instead of a timeout.

    >>> c = ControlClient("ipc:///tmp/livestack-0/SESSION/control.sock", timeout=2.0)
    >>> c.kill()["hseq"]
"""

from __future__ import annotations

import itertools
import os
import time

import orjson
import zmq
from zmq.utils.monitor import recv_monitor_message

from livestack.control import protocol as P


class ControlError(Exception):
    """Base of the client's errors."""


class ControlTimeout(ControlError):
    """No reply within the timeout: the stack is down, or the endpoint is wrong."""


class ControlUnauthorized(ControlError):
    """The server rejected this client's CURVE key (or the server key is wrong)."""


class CommandError(ControlError):
    """The control surface answered with an error; ``code`` is the protocol error code."""

    def __init__(self, reply: dict):
        super().__init__(f"{reply.get('error')}: {reply.get('message')}")
        self.reply = reply
        self.code = reply.get("error")


_HANDSHAKE_FAIL = (getattr(zmq, "EVENT_HANDSHAKE_FAILED_AUTH", 0) | getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", 0)
                   | getattr(zmq, "EVENT_HANDSHAKE_FAILED_NO_DETAIL", 0))


class ControlClient:
    """Talks to one control endpoint.

    Parameters
    ----------
    endpoint : str
        ``ipc://…/control.sock`` or ``tcp://HOST:PORT``.
    timeout : float
        Seconds to wait for each reply.
    server_key : str or bytes, optional
        The server's CURVE public key (Z85) or certificate file: turns CURVE on.
    public_key, secret_key : optional
        This client's CURVE key pair (Z85), or ``keys``: a secret certificate file (``livestack
        ctl keygen``) whose public key is on the server's allow list. Generated when omitted
        (ephemeral: the server refuses it, which is only useful to test the refusal).
    """

    def __init__(self, endpoint: str, timeout: float = 2.0, server_key=None, public_key=None, secret_key=None,
                 keys=None, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self._ctx = context or zmq.Context.instance()
        self._curve = None
        if server_key is not None:
            if keys is not None:
                public_key, secret_key = P.load_keypair(keys)
            if secret_key is None:
                public_key, secret_key = zmq.curve_keypair()
            self._curve = (P.key_bytes(server_key), P.key_bytes(public_key), P.key_bytes(secret_key))
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-{time.monotonic_ns() % 1000000}"
        self._sock = None
        self._mon = None

    # ---- socket -----------------------------------------------------------------------------
    def _socket(self):
        if self._sock is None:
            s = self._ctx.socket(zmq.DEALER)
            s.linger = 0
            if self._curve:
                s.curve_serverkey, s.curve_publickey, s.curve_secretkey = self._curve
                self._mon = s.get_monitor_socket(_HANDSHAKE_FAIL)
            s.connect(self.endpoint)
            self._sock = s
            self._poller = zmq.Poller()
            self._poller.register(s, zmq.POLLIN)
            if self._mon is not None:
                self._poller.register(self._mon, zmq.POLLIN)
        return self._sock

    def _reset(self) -> None:
        if self._sock is not None:
            if self._mon is not None:
                try:
                    self._sock.disable_monitor()
                except zmq.ZMQError:
                    pass
                self._mon.close(0)
                self._mon = None
            self._sock.close(0)
            self._sock = None

    def close(self) -> None:
        self._reset()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- requests ---------------------------------------------------------------------------
    def request(self, cmd: str, args: dict | None = None, timeout: float | None = None) -> dict:
        """Send one request and return the reply dict (ok or error); raises ControlTimeout /
        ControlUnauthorized when there is no reply."""
        rid = f"{self._prefix}-{next(self._ids)}"
        msg = {"id": rid, "cmd": cmd}
        if args:
            msg["args"] = {k: v for k, v in args.items() if v is not None}
        return self.request_raw(orjson.dumps(msg), rid, timeout)

    def request_raw(self, payload: bytes, rid=None, timeout: float | None = None) -> dict:
        """Send raw bytes as a request (for tests of malformed input); the reply dict."""
        sock = self._socket()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            sock.send_multipart([b"", payload], zmq.NOBLOCK)
        except zmq.Again:
            self._reset()
            raise ControlTimeout(f"cannot send to {self.endpoint}: no connection (is the stack running?)") from None
        poller = self._poller
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._reset()
                raise ControlTimeout(f"no reply from {self.endpoint} within {self.timeout if timeout is None else timeout:g} s "
                                     "(is the stack running? is the endpoint right?)")
            ready = dict(poller.poll(max(1, int(left * 1000))))
            if self._mon is not None and self._mon in ready:
                ev = recv_monitor_message(self._mon)
                if ev["event"] & _HANDSHAKE_FAIL:
                    self._reset()
                    raise ControlUnauthorized(
                        f"{self.endpoint}: CURVE handshake rejected (event {ev['event']}, code {ev['value']}): "
                        "this client's key is not authorized, or the server key is wrong")
            if sock in ready:
                frames = sock.recv_multipart()
                try:
                    reply = orjson.loads(frames[-1])
                except orjson.JSONDecodeError:
                    continue
                if rid is None or reply.get("id") == rid:
                    return reply
                # a late reply to an earlier request: drop it

    def call(self, cmd: str, timeout: float | None = None, **args) -> dict:
        """Like :meth:`request` but raises CommandError for an error reply."""
        reply = self.request(cmd, args, timeout)
        if not reply.get("ok"):
            raise CommandError(reply)
        return reply

    # ---- one method per command ----------------------------------------------------------------
    def status(self) -> dict:
        return self.call("status")

    def session_start(self) -> dict:
        return self.call("session-start")

    def session_stop(self) -> dict:
        return self.call("session-stop")

    def enable(self) -> dict:
        return self.call("enable")

    def disable(self) -> dict:
        return self.call("disable")

    def reduce_only(self) -> dict:
        return self.call("reduce-only")

    def kill(self) -> dict:
        return self.call("kill")

    def kill_reset(self) -> dict:
        return self.call("kill-reset")

    def cancel_all(self, instrument=None) -> dict:
        return self.call("cancel-all", instrument=instrument)

    def set_limit(self, limit, value, instrument=None) -> dict:
        return self.call("set-limit", limit=limit, value=value, instrument=instrument)

    def update_config(self, settings: dict, instrument=None) -> dict:
        return self.call("config", set=settings, instrument=instrument)

    def orders(self, instrument=None) -> dict:
        return self.call("orders", instrument=instrument)

    def positions(self) -> dict:
        return self.call("positions")

    def metrics(self) -> dict:
        return self.call("metrics")


class EventSubscriber:
    """SUB socket on the control PUB endpoint: ``next(timeout)`` -> (topic, dict) or None."""

    def __init__(self, endpoint: str, topics=("",), server_key=None, public_key=None, secret_key=None,
                 context: zmq.Context | None = None, keys=None):
        self._ctx = context or zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.SUB)
        self.sock.linger = 0
        if server_key is not None:
            if keys is not None:
                public_key, secret_key = P.load_keypair(keys)
            if secret_key is None:
                public_key, secret_key = zmq.curve_keypair()
            self.sock.curve_serverkey = P.key_bytes(server_key)
            self.sock.curve_publickey = P.key_bytes(public_key)
            self.sock.curve_secretkey = P.key_bytes(secret_key)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        self.sock.connect(endpoint)

    def next(self, timeout: float = 1.0):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        topic, payload = self.sock.recv_multipart()
        return topic.decode(), orjson.loads(payload)

    def close(self) -> None:
        self.sock.close(0)


def events_endpoint(endpoint: str) -> str | None:
    """The default PUB endpoint beside a ROUTER ipc endpoint (see ControlServer.bind)."""
    if endpoint.startswith("ipc://"):
        return (endpoint[:-5] if endpoint.endswith(".sock") else endpoint) + ".events.sock"
    return None
