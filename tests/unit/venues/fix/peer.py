"""A scripted FIX counterparty for session tests: a raw TCP acceptor on 127.0.0.1 with no session
logic of its own, so a test can send exactly the bytes it wants (garbled, out of sequence ...)."""

from __future__ import annotations

import socket
import time

from livestack.venues.fix import codec

NOW = 1_704_067_201_500_000_000


class FakeClock:
    """Monotonic seconds under the test's control (the session's timers read it)."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


class Peer:
    __test__ = False

    def __init__(self, sender="EXCHANGE", target="LIVESTACK", begin="FIX.4.4"):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.setblocking(False)
        self.port = self.srv.getsockname()[1]
        self.conn: socket.socket | None = None
        self.enc = codec.Encoder(begin, sender, target)
        self.framer = codec.Framer()
        self.inbox: list[codec.FixMessage] = []
        self.read = 0
        self.seq = 1
        self.eof = False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.srv.close()

    def drop(self) -> None:
        """Close the connection (the listening socket stays)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.framer.clear()
        self.eof = False

    def _until(self, cond, session, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if session is not None:
                session.poll()
            self.pump()
            if cond():
                return True
            time.sleep(0.001)
        return cond()

    def accept(self, session, timeout: float = 5.0) -> None:
        def ok():
            try:
                c, _ = self.srv.accept()
            except BlockingIOError:
                return False
            c.setblocking(False)
            self.conn = c
            self.framer.clear()
            self.eof = False
            return True
        assert self._until(ok, session, timeout), "initiator did not connect"

    def pump(self) -> None:
        if self.conn is None or self.eof:
            return
        while True:
            try:
                data = self.conn.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self.eof = True
                return
            if not data:
                self.eof = True
                return
            self.framer.feed(data)
            for status, raw in self.framer:
                assert status == codec.OK, f"initiator sent a bad frame: {raw!r}"
                self.inbox.append(codec.parse_message(raw))

    def expect(self, session, msg_type: bytes, timeout: float = 5.0) -> codec.FixMessage:
        """Next message of ``msg_type`` from the initiator (earlier ones of other types are skipped)."""
        found = []

        def ok():
            while self.read < len(self.inbox):
                m = self.inbox[self.read]
                self.read += 1
                if m.msg_type == msg_type:
                    found.append(m)
                    return True
            return False
        assert self._until(ok, session, timeout), f"no 35={msg_type!r} from the initiator; got {self.inbox[-5:]}"
        return found[0]

    def nothing_of(self, session, msg_type: bytes, wait: float = 0.2) -> bool:
        self._until(lambda: False, session, wait)
        return all(m.msg_type != msg_type for m in self.inbox[self.read:])

    def closed(self, session, timeout: float = 5.0) -> bool:
        return self._until(lambda: self.eof, session, timeout)

    def send_raw(self, data: bytes) -> None:
        self.conn.sendall(data)

    def build(self, msg_type, fields=(), seq=None, poss_dup=False, orig_sending_ns=0) -> bytes:
        if seq is None:
            seq = self.seq
            self.seq += 1
        return self.enc.encode(msg_type, seq, NOW, fields, poss_dup, orig_sending_ns)

    def send(self, msg_type, fields=(), seq=None, poss_dup=False, orig_sending_ns=0) -> bytes:
        raw = self.build(msg_type, fields, seq, poss_dup, orig_sending_ns)
        self.send_raw(raw)
        return raw

    def logon(self, session, heartbeat_s=30, fields=()) -> codec.FixMessage:
        """Accept the initiator's connection, read its Logon, answer it."""
        self.accept(session)
        m = self.expect(session, b"A")
        self.send(b"A", [(98, 0), (108, heartbeat_s), *fields])
        assert self._until(lambda: session.active, session, 5), session.last_disconnect_reason
        return m
