"""Capture file formats read by every replay path (backtest, sim venue ``market = "capture"``,
replay server, ``livestack capture verify|convert``).

``livestack`` (the native format, ``../shared/data/binance/*.gz``)
    gzip or plain text, one received message a line: ``<local receive ns> <payload>``. A Binance
    REST depth snapshot is a line of its own (``{"lastUpdateId": ...}``) where it was received.

``cryptofeed`` (cryptofeed's raw data recorder, ``cryptofeed/raw_data_collection.py``)
    one event a line in files named ``<EXCHANGE>.ws.<n>.<k>`` (websocket) and
    ``<EXCHANGE>.http.<n>.<k>`` (REST)::

        <url> <-> <unix seconds float>              connect
        <url> <- <unix seconds float>: <payload>    sent
        <unix seconds float>: <payload>             received on the websocket
        <url> -> <unix seconds float>: <body>       REST response (``*.http.*`` files)

    Some exchanges' payloads were written as a Python bytes literal (``b'...'``, OKX); they are
    turned back into bytes. Reading a ``.ws.`` file also merges the REST responses of the sibling
    ``.http.`` files of the same exchange and connection that are Binance depth snapshots
    (``/depth?symbol=S``), in time order, so the Binance book procedure sees them as it did live.

Everything comes out as :class:`Msg` ``(ts, data, symbol)``: receive time in ns (the float seconds
are converted exactly from their decimal text), payload bytes, and for a REST snapshot the symbol
its URL names (``None`` otherwise). Lines that fit neither form are counted in ``malformed``
and kept out.
"""

from __future__ import annotations

import ast
import gzip
import re
from pathlib import Path
from typing import NamedTuple

FORMATS = ("livestack", "cryptofeed")
_CF_RECV = re.compile(rb"\A([0-9]+(?:\.[0-9]+)?): (.*)\Z", re.S)
_CF_HTTP = re.compile(rb"\A(\S+) -> ([0-9]+(?:\.[0-9]+)?): (.*)\Z", re.S)
_CF_SENT = re.compile(rb"\A(\S+) <- ([0-9]+(?:\.[0-9]+)?): ")
_CF_CONN = re.compile(rb"\A(\S+) <-> ([0-9]+(?:\.[0-9]+)?)\s*\Z")
_LS_LINE = re.compile(rb"\A[0-9]+ ")
_SYMBOL = re.compile(r"[?&]symbol=([A-Za-z0-9_\-]+)")


class Msg(NamedTuple):
    ts: int
    data: bytes
    symbol: str | None = None


class CaptureRead(NamedTuple):
    messages: list
    malformed: int
    sent: int
    connects: int


def _open(path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def seconds_to_ns(s: bytes) -> int:
    """``b"1633998512.0633569"`` -> ns, exactly (no float on the way)."""
    whole, _, frac = s.partition(b".")
    return int(whole) * 1_000_000_000 + int((frac[:9] or b"0").ljust(9, b"0"))


def detect_format(path) -> str:
    """``"livestack"`` or ``"cryptofeed"`` from the first lines; ValueError when neither fits."""
    with _open(path) as f:
        for _, line in zip(range(50), f):
            line = line.rstrip(b"\r\n")
            if not line or line.startswith(b"configuration: "):
                continue
            if _CF_CONN.match(line) or _CF_SENT.match(line) or _CF_HTTP.match(line) or _CF_RECV.match(line):
                return "cryptofeed"
            if _LS_LINE.match(line):
                return "livestack"
    raise ValueError(f"{path}: neither a livestack capture ('<ns> <json>' lines) nor a cryptofeed "
                     "raw capture ('<ts>: <payload>' / '<url> -> <ts>: <body>' lines)")


def _payload(p: bytes) -> bytes:
    if p[:2] in (b"b'", b'b"'):
        try:
            v = ast.literal_eval(p.decode())
            if isinstance(v, bytes):
                return v
        except (ValueError, SyntaxError, UnicodeDecodeError):
            pass
    return p


def _read_livestack(path) -> CaptureRead:
    out, bad = [], 0
    last = 0
    with _open(path) as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            sp = line.find(b" ")
            try:
                if sp <= 0:
                    raise ValueError
                last = int(line[:sp])
            except ValueError:
                # no timestamp: kept (the decoder counts it malformed), as the native reader always did
                bad += 1
                out.append(Msg(last, line if sp <= 0 else line[sp + 1:]))
                continue
            out.append(Msg(last, line[sp + 1:]))
    return CaptureRead(out, bad, 0, 0)


def _read_cf_file(path, http: bool) -> CaptureRead:
    out, bad, sent, conns = [], 0, 0, 0
    with _open(path) as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line or line.startswith(b"configuration: "):
                continue
            m = _CF_HTTP.match(line)
            if m:
                body = m.group(3)
                if b" header: " in body:
                    body = body.split(b" header: ", 1)[0]
                url = m.group(1).decode(errors="replace")
                sm = _SYMBOL.search(url)
                out.append(Msg(seconds_to_ns(m.group(2)), _payload(body), sm.group(1) if sm else None))
                continue
            if _CF_CONN.match(line):
                conns += 1
                continue
            if _CF_SENT.match(line):
                sent += 1
                continue
            m = _CF_RECV.match(line)
            if m and not http:
                out.append(Msg(seconds_to_ns(m.group(1)), _payload(m.group(2))))
                continue
            bad += 1
    return CaptureRead(out, bad, sent, conns)


def _http_siblings(path: Path) -> list[Path]:
    """``BINANCE.ws.1.0`` -> the ``BINANCE.http.*`` files beside it."""
    name = path.name
    if ".ws." not in name:
        return []
    exch = name.split(".ws.", 1)[0]
    return sorted(p for p in path.parent.glob(f"{exch}.http.*") if p.is_file())


def read_messages(path, fmt: str | None = None) -> CaptureRead:
    """All received messages of a capture, oldest first (see the module docstring)."""
    fmt = fmt or detect_format(path)
    if fmt == "livestack":
        return _read_livestack(path)
    if fmt != "cryptofeed":
        raise ValueError(f"capture format {fmt!r}: expected one of {FORMATS}")
    path = Path(path)
    is_http = ".http." in path.name
    r = _read_cf_file(path, is_http)
    if is_http:
        return r
    msgs = list(r.messages)
    for hp in _http_siblings(path):
        h = _read_cf_file(hp, True)
        msgs += [m for m in h.messages if m.data.lstrip()[:16].startswith(b'{"lastUpdateId"')]
    msgs.sort(key=lambda m: m.ts)  # stable: websocket order kept within one timestamp
    return CaptureRead(msgs, r.malformed, r.sent, r.connects)


def write_livestack(path, messages) -> int:
    """Write ``(ts, data[, symbol])`` messages as a livestack capture (gzip when ``.gz``); returns lines.

    A payload with a line break cannot be one line: ValueError, nothing half-written is left.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    n = 0
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(tmp, "wb") as f:
            for m in messages:
                data = m[1]
                if b"\n" in data or b"\r" in data:
                    data = data.replace(b"\r\n", b" ").replace(b"\n", b" ").replace(b"\r", b" ")
                f.write(b"%d %s\n" % (m[0], data))
                n += 1
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n
