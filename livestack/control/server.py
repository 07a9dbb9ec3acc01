"""The control process: ZeroMQ ROUTER (requests) + PUB (state changes) in front of the harness.

Topology (the harness is reached only through shared-memory rings, never through ZeroMQ)::

    ctl / ControlClient ──DEALER/REQ──▶ ROUTER ┐                    ┌──▶ cmd ring (CONTROL_CMD) ──▶ harness
                                               │  control process   │
    ctl events / SUB ◀──────────────── PUB ◀───┘  (this module)     └──◀ reply ring (CONTROL_REPLY) ◀──
                                                        ▲  ◀── events ring (FILL, TRADING_STATE, ANOMALY, ANOMALY_TEXT, ORDER_STATE)
                                                        └───── telemetry block (orders, positions, metrics)

One loop, one thread (plus pyzmq's ZAP authenticator thread when CURVE is on, see
``livestack.control.auth``): poll the ROUTER with a timeout while
nothing is in flight. Right after a command is written to the cmd ring the server watches the
reply ring for at most ``reply_spin_us`` (CPU pauses): the pinned harness answers a command within
a few microseconds, so the reply usually goes back to the client in the same pass, without a trip
round the loop. A reply not there by then (a descheduled harness, a multi-command config) is
awaited in the loop: poll without blocking and check the reply ring with ``Backoff("backoff")``
(spin → short sleeps), so it is picked up within microseconds without busy-spinning a core. Every request gets exactly one reply; a command the
harness has not answered by the deadline gets a ``timeout`` error (a late reply is published on
PUB as ``control`` with ``late: true`` and otherwise dropped).

Options (``run_process(..., options, stop)``; the ``control`` config table plus what the supervisor adds):

=========================  ======================================================================
``endpoint``               ROUTER endpoint; default ``ipc://<session_dir>/control.sock``
``pub_endpoint``           PUB endpoint; default: the ROUTER's with ``.events`` (ipc: ``control.events.sock``), "-" for none
``session_dir``            directory for the default ipc endpoints (default: a per-user temp dir)
``timeout_ms``             deadline for a harness reply (default 2000)
``curve_secret_key``       the server's secret certificate file (``livestack ctl keygen``); the Python
                           API also takes Z85 text with ``curve_public_key``. Required for ANY tcp
                           endpoint, loopback included (ipc needs none: the socket is 0600)
``curve_authorized_keys``  client public keys allowed: certificate files, a directory of ``*.key``
                           files (or Z85 text from the API). Required with CURVE: never "any client"
``instruments``            the config's instruments (ids, symbols, decimals); default: what the
                           harness registered in the telemetry block
``params``                 the strategy's parameter names in index order (for ``config``
                           ``strategy.<name>``); else resolved from ``strategy`` ({name, params})
                           through ``livestack.strategies.get``; else only ``strategy.params.<index>``
``attach_timeout_s``       wait this long for the rings and telemetry block to exist (default 10)
``reply_spin_us``          after writing a command, watch the reply ring this long before going back
                           to the loop (default 50; 0: never)
``reply_spins``            loop passes before the first sleep while a reply is awaited (default 20)
=========================  ======================================================================
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
import struct
from dataclasses import dataclass, field

import numpy as np
import zmq

from livestack.control import auth
from livestack.control import protocol as P
from livestack.ipc import Backoff, Ring
from livestack.schema import DTYPES, DTYPE_BY_KIND, SLOT128, ControlCmdType, ControlStatus, TradingState, spec
from livestack.schema.fixedpoint import format_fixed

log = logging.getLogger(__name__)

#: struct format letter of each schema integer type, by (size, signed)
_STRUCT_CHAR = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
                (1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q"}


def struct_of(rec: spec.Record) -> tuple[struct.Struct, tuple[str, ...]]:
    """A record's layout as a little-endian ``struct.Struct`` and the names of its packed fields,
    derived from ``spec`` (``_``-prefixed fields become pad bytes, other byte arrays ``Ns``).
    ``spec.layout`` guarantees no implicit padding, so ``<`` (standard sizes, no alignment) matches
    the C struct and the numpy dtype byte for byte."""
    fmt, names = ["<"], []
    for f, _ in spec.layout(rec):
        size = spec.TYPES[f.type][3]
        if f.name.startswith("_"):
            fmt.append(f"{size * f.count}x")
            continue
        fmt.append(f"{f.count}s" if f.count > 1 else _STRUCT_CHAR[(size, f.type.startswith("i"))])
        names.append(f.name)
    return struct.Struct("".join(fmt)), tuple(names)


#: CONTROL_CMD / CONTROL_REPLY packed and unpacked without numpy on the control path
_CMD, _CMD_FIELDS = struct_of(spec.RECORDS_BY_NAME["CONTROL_CMD"])
_REPLY, _REPLY_FIELDS = struct_of(spec.RECORDS_BY_NAME["CONTROL_REPLY"])
_CMD_KIND = spec.RECORDS_BY_NAME["CONTROL_CMD"].kind
_CMD_VERSION = spec.RECORDS_BY_NAME["CONTROL_CMD"].version


def _reply_dict(raw: bytes, offset: int) -> dict:
    return dict(zip(_REPLY_FIELDS, _REPLY.unpack_from(raw, offset)))


_CMD_INDEX = {n: i for i, n in enumerate(_CMD_FIELDS)}


def _pack_cmd(**values) -> bytes:
    """A CONTROL_CMD slot from field values by name (absent fields are 0)."""
    packed = [0] * len(_CMD_FIELDS)
    for name, v in values.items():
        packed[_CMD_INDEX[name]] = v
    return _CMD.pack(*packed)


DEFAULT_TIMEOUT_MS = 2000
IDLE_POLL_MS = 20  # nothing in flight: block on ZeroMQ this long, then look at the events ring
HEARTBEAT_S = 0.25

_ENUM_OF = {}
for _rec in spec.RECORDS:
    for _f in _rec.fields:
        if _f.unit.startswith("enum "):
            _ENUM_OF[(_rec.name, _f.name)] = _f.unit.split()[1]


def set_timer_slack_ns(ns: int) -> bool:
    """Shrink this thread's timer slack (default 50 µs) so short sleeps end on time (Linux; best effort)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(29, ns, 0, 0, 0) == 0  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        return False


def default_session_dir(session: str | None = None) -> str:
    base = os.path.join(tempfile.gettempdir(), f"livestack-{os.getuid()}")
    return os.path.join(base, session) if session else base


def record_to_dict(raw: bytes) -> dict:
    """A record slot (bytes) as a JSON-able dict: enums by name, padding dropped."""
    from livestack.schema import dtypes

    kind = int.from_bytes(raw[:2], "little")
    rec = spec.RECORDS_BY_KIND.get(kind)
    if rec is None:
        return {"kind": f"unknown({kind})"}
    arr = np.frombuffer(raw[:rec.size], dtype=DTYPE_BY_KIND[kind])[0]
    out = {"kind": rec.name.lower()}
    for f, _ in spec.layout(rec):
        if f.name.startswith("_") or f.name in ("kind", "version"):
            continue
        if f.count > 1:  # a byte array: ANOMALY_TEXT.text (utf-8, `length` bytes used)
            b = arr[f.name].tobytes()
            out[f.name] = b[:int(arr["length"])].decode("utf-8", "replace") if f.unit == "utf-8" else b.hex()
            continue
        v = int(arr[f.name])
        enum_name = _ENUM_OF.get((rec.name, f.name))
        if enum_name:
            try:
                v = dtypes.ENUMS[enum_name](v).name
            except ValueError:
                pass
        out[f.name] = v
    return out


_STATE_NAMES = {int(s): s.name for s in TradingState}


def decode_state_bits(value1: int) -> dict:
    """CONTROL_REPLY.value1 as the core writes it: trading state | kill latched << 8 | session active << 9."""
    ts = value1 & 0xFF
    name = _STATE_NAMES.get(ts) or str(ts)
    return {"trading_state": name, "kill_latched": bool(value1 >> 8 & 1), "session_active": bool(value1 >> 9 & 1)}


@dataclass
class Pending:
    """One client request waiting for harness replies (several for a multi-key config update)."""
    envelope: list
    client_id: object
    cmd: str
    args: dict
    deadline: float
    rids: dict = field(default_factory=dict)  # harness request id -> Update (or None)
    replies: dict = field(default_factory=dict)  # harness request id -> reply record (np.void)
    version: int = 0


class ControlServer:
    """The control surface of one session (see the module docstring)."""

    def __init__(self, cmd_ring: str, reply_ring: str, events_ring: str | None, telemetry: str | None,
                 options: dict | None = None):
        self.options = opts = dict(options or {})
        wait = float(opts.get("attach_timeout_s", 10.0))
        self.cmd = Ring.attach(cmd_ring, slot_size=128, timeout=wait, role="producer")
        self.reply = Ring.attach(reply_ring, slot_size=128, timeout=wait, role="consumer")
        self.events = Ring.attach(events_ring, slot_size=128, timeout=wait, role="consumer") if events_ring else None
        self.tel = None
        self.tel_slot = -1
        if telemetry:
            from livestack.telemetry.block import TelemetryBlock

            self.tel = TelemetryBlock.attach(telemetry, timeout=wait)
            self.tel_slot = self.tel.register_process("control")
        self.timeout_s = float(opts.get("timeout_ms", DEFAULT_TIMEOUT_MS)) / 1000.0
        self._instruments_cfg = P.Instruments.from_config(opts.get("instruments"))
        self.markets = opts.get("markets") or {}  # feeds and venues by name (livestack.node.markets.summary)
        self.params = self._param_names(opts)
        self.config_version = 0
        self._rid = time.time_ns()  # harness request ids: unique across restarts of this process
        self.pending: dict[int, Pending] = {}
        self._late: set[int] = set()
        self._reply_buf = np.zeros(64, dtype=DTYPES["CONTROL_REPLY"])
        self._events_buf = np.zeros(256, dtype=SLOT128)
        self._reply_options(opts)
        set_timer_slack_ns(1000)
        self.ctx = zmq.Context.instance() if opts.get("shared_context") else zmq.Context()
        self.router = self.pub = None
        self.auth: auth.Authenticator | None = None
        self.endpoint = self.pub_endpoint = None
        self._ipc_paths: list[str] = []
        #: request counts for /metrics (procmetrics.control_updater mirrors them)
        self.counts = {"requests": 0, "errors": 0, "timeouts": 0}

    def _reply_options(self, opts: dict) -> None:
        """How a reply is awaited (``[control] reply_spins`` / ``reply_spin_us``, schema-checked)."""
        # waiting for a reply: a few pauses, then short sleeps. No sched_yield: on a loaded machine a
        # yield can cost a whole time slice, while a sleeper is woken promptly by the scheduler.
        self.backoff = Backoff("backoff", spins=int(opts.get("reply_spins", 20)), yields=0, min_sleep_ns=5000,
                               max_sleep_ns=50_000)
        # right after a command: a bounded watch of the reply ring (see the module docstring)
        self.reply_spin_s = max(0.0, float(opts.get("reply_spin_us", 50))) / 1e6
        self._spin = Backoff("spin")

    # ---- setup ------------------------------------------------------------------------------
    @staticmethod
    def _param_names(opts) -> tuple[str, ...] | None:
        if opts.get("params") is not None:
            return tuple(str(p) for p in opts["params"])
        strat = opts.get("strategy")
        if isinstance(strat, dict) and strat.get("name"):
            try:
                from livestack import strategies

                return tuple(strategies.get(strat["name"], strat.get("params") or {}).param_names)
            except Exception as e:  # noqa: BLE001 - a strategy that fails to load must not stop control
                log.warning("strategy parameter names unavailable (%s); config accepts strategy.params.<index>", e)
        return None

    def bind(self) -> None:
        opts = self.options
        session_dir = opts.get("session_dir") or default_session_dir(opts.get("session"))
        endpoint = opts.get("endpoint") or f"ipc://{os.path.join(os.path.abspath(session_dir), 'control.sock')}"
        pub_endpoint = opts.get("pub_endpoint") or ""
        if not pub_endpoint:
            if endpoint.startswith("ipc://"):
                base = endpoint[:-5] if endpoint.endswith(".sock") else endpoint
                pub_endpoint = base + ".events.sock"
            else:
                pub_endpoint = "-"
        keys = auth.check_options(opts, endpoint, pub_endpoint)  # ValueError: nothing bound

        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.linger = 0
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.router.sndhwm = self.router.rcvhwm = 10000
        if keys is not None:
            self.auth = auth.Authenticator(self.ctx, keys.authorized)
            auth.make_curve_server(self.router, keys)
        self._bind(self.router, endpoint)
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        if pub_endpoint != "-":
            self.pub = self.ctx.socket(zmq.PUB)
            self.pub.linger = 0
            self.pub.sndhwm = 100000
            if keys is not None:  # fills and order states are private too: same allow list
                auth.make_curve_server(self.pub, keys)
            self._bind(self.pub, pub_endpoint)
            self.pub_endpoint = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)

    def _bind(self, sock, endpoint: str) -> None:
        if endpoint.startswith("ipc://"):
            path = endpoint[len("ipc://"):]
            os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", mode=0o700, exist_ok=True)
            old = os.umask(0o177)  # the socket file is created 0600: no window where others can connect
            try:
                sock.bind(endpoint)
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
            self._ipc_paths.append(path)
        else:
            sock.bind(endpoint)

    # ---- loop -------------------------------------------------------------------------------
    def run(self, stop=None) -> None:
        if self.router is None:
            self.bind()
        flag = {"stop": False}

        def _term(*_):
            flag["stop"] = True

        try:
            signal.signal(signal.SIGTERM, _term)
        except ValueError:
            pass  # not the main thread (tests run the server in a thread)
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        next_hb = 0.0
        while not flag["stop"] and not (stop is not None and stop.is_set()):
            ready = dict(poller.poll(0 if self.pending else IDLE_POLL_MS))
            worked = False
            if self.auth is not None and self.auth.refused:
                self._report_refused()
            if self.router in ready:
                for _ in range(256):
                    try:
                        frames = self.router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._handle_request(frames)
                    worked = True
            if self._drain_replies():
                worked = True
            if self.events is not None and self._drain_events():
                worked = True
            now = time.monotonic()
            if self.pending:
                self._expire(now)
            if now >= next_hb:
                next_hb = now + HEARTBEAT_S
                if self.tel is not None:
                    self.tel.heartbeat(self.tel_slot)
            if self.pending and not worked:
                self.backoff.idle()
            else:
                self.backoff.reset()

    def close(self) -> None:
        for s in (self.router, self.pub):
            if s is not None:
                s.close(0)
        self.router = self.pub = None
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        self.ctx.term() if not self.options.get("shared_context") else None
        for p in self._ipc_paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        if self.tel is not None:
            self.tel.unregister_process(self.tel_slot)
            self.tel.close()
            self.tel = None
        for r in (self.cmd, self.reply, self.events):
            if r is not None:
                r.close()

    # ---- CURVE clients refused by the authenticator ------------------------------------------
    def _report_refused(self) -> None:
        while self.auth.refused:
            key = self.auth.refused.popleft()
            self._publish("control", {"event": "unauthorized", "client_key": key,
                                      "message": "client CURVE key not authorized"})

    # ---- requests ---------------------------------------------------------------------------
    def _send(self, envelope: list, reply: dict) -> None:
        try:
            self.router.send_multipart(envelope + [P.encode(reply)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # client gone or its queue full: nothing to answer to

    def _handle_request(self, frames: list) -> None:
        # [identity, (empty delimiter from REQ/our DEALER client), payload]
        if len(frames) < 2:
            return
        envelope = frames[:-1]
        rid, name, submitted = None, None, False
        self.counts["requests"] += 1
        try:
            rid, name, args = P.decode_request(frames[-1])
            cmd = P.COMMANDS[name]
            if cmd.harness is None:
                self._send(envelope, self._query(rid, name, args))
            else:
                self._submit(envelope, rid, name, args)
                submitted = True
        except P.RequestError as e:
            self.counts["errors"] += 1
            self._send(envelope, P.error_reply(getattr(e, "id", rid), name, e.code, e.message))
        except Exception as e:  # noqa: BLE001 - every request gets a reply, even on a bug
            self.counts["errors"] += 1
            self._send(envelope, P.error_reply(rid, name, "internal", f"{type(e).__name__}: {e}"))
        if submitted and self.reply_spin_s and self.reply.wait_readable(self.reply_spin_s, self._spin):
            self._drain_replies()

    def instruments(self) -> P.Instruments:
        if self._instruments_cfg:
            return self._instruments_cfg
        if self.tel is not None:
            return P.Instruments.from_positions(self.tel.positions())
        return P.Instruments()

    def _submit(self, envelope, rid, name, args) -> None:
        """Validate, then write the CONTROL_CMD record(s) to the cmd ring; the reply comes later."""
        insts = self.instruments() if name in ("cancel-all", "set-limit", "config") else None
        updates: list[tuple] = []  # (cmd, instrument, arg0, arg1, update)
        version = 0
        if name == "cancel-all":
            inst = insts.resolve(args.get("instrument"))
            updates.append((ControlCmdType.CANCEL_ALL, inst.id if inst else 0, 0, 0, None))
        elif name == "set-limit":
            if "limit" not in args or "value" not in args:
                raise P.RequestError("bad_arguments", "set-limit needs 'limit' and 'value'")
            inst = insts.resolve(args.get("instrument"))
            limit = P.parse_limit(args["limit"])
            # a decimal for every instrument: the scale of the only one (several: say which)
            only = next(iter(insts.by_id.values())) if inst is None and len(insts.by_id) == 1 else None
            value = P.limit_value(limit, args["value"], inst or only)
            args["unit"] = P.limit_unit_text(limit, inst or only)
            version = self._next_version()
            updates.append((ControlCmdType.SET_LIMIT, inst.id if inst else 0, int(limit), value,
                            P.Update(f"risk.{limit.name.lower()}", ControlCmdType.SET_LIMIT, inst.id if inst else 0,
                                     int(limit), value)))
        elif name == "config":
            plan = P.plan_config(args.get("set"), args.get("instrument"), insts, self.params)
            version = self._next_version()
            updates += [(u.cmd, u.instrument, u.arg0, u.arg1, u) for u in plan]
        else:
            updates.append((P.COMMANDS[name].harness, 0, 0, 0, None))
        if self.cmd.free() < len(updates):
            raise P.RequestError("unavailable", f"command ring full ({self.cmd.size()} commands unread): "
                                 "the harness is not consuming commands")
        pend = Pending(envelope, rid, name, args, time.monotonic() + self.timeout_s, version=version)
        for cmd, inst, a0, a1, upd in updates:
            self._rid += 1
            rec = _pack_cmd(kind=_CMD_KIND, version=_CMD_VERSION, instrument=inst, seq=self.cmd.tail + 1,
                            ts=time.time_ns(), request_id=self._rid, arg0=a0, arg1=a1, arg2=version, cmd=int(cmd))
            if self.cmd.write(rec) != 0:  # cannot happen after the free() check (single producer)
                raise P.RequestError("unavailable", "command ring full")
            pend.rids[self._rid] = upd
            self.pending[self._rid] = pend
        if version:
            self.config_version = version

    def _next_version(self) -> int:
        cur = self.config_version
        if self.tel is not None:
            cur = max(cur, self.tel.gauge("config_version"))
        return cur + 1

    def _drain_replies(self) -> bool:
        n = self.reply.read(self._reply_buf)
        if n == 0:
            return False
        raw = self._reply_buf[:n].tobytes()
        for i in range(n):
            r = _reply_dict(raw, i * 128)
            rid = r["request_id"]
            pend = self.pending.pop(rid, None)
            if pend is None:
                if rid in self._late:
                    self._late.discard(rid)
                    self._publish("control", {"late": True, "request_id": rid, "hseq": int(r["hseq"]),
                                              "ok": int(r["status"]) == ControlStatus.OK})
                continue
            pend.replies[rid] = r
            if len(pend.replies) == len(pend.rids):
                self._complete(pend)
        return n > 0

    def _complete(self, pend: Pending) -> None:
        replies = [pend.replies[rid] for rid in pend.rids]  # in send order
        last = replies[-1]
        hseq = int(last["hseq"])
        errors = [(rid, r) for rid, r in zip(pend.rids, replies) if int(r["status"]) != ControlStatus.OK]
        state = decode_state_bits(int(last["value1"]))
        if errors:
            rid, r = errors[0]
            code = P.HARNESS_ERRORS.get(int(r["error"]), "internal")
            upd = pend.rids[rid]
            what = f" ({upd.key})" if upd is not None else ""
            message = {
                "not_allowed": f"{pend.cmd}{what}: not allowed in this state ({state['trading_state']}, "
                               f"kill {'latched' if state['kill_latched'] else 'not latched'}, "
                               f"session {'active' if state['session_active'] else 'not started'})",
                "unknown_instrument": f"{pend.cmd}{what}: the harness does not know instrument {int(r['instrument'])}",
                "bad_arguments": f"{pend.cmd}{what}: the harness rejected the value",
                "unknown_command": f"{pend.cmd}: the harness does not know this command",
            }.get(code, f"{pend.cmd}{what}: harness error {int(r['error'])}")
            applied = [{"key": pend.rids[q].key, "hseq": int(x["hseq"])} for q, x in zip(pend.rids, replies)
                       if pend.rids[q] is not None and int(x["status"]) == ControlStatus.OK]
            extra = {"hseq": int(r["hseq"])}
            if applied:
                extra["applied"] = applied
            reply = P.error_reply(pend.client_id, pend.cmd, code, message, **extra)
        else:
            reply = P.ok_reply(pend.client_id, pend.cmd, hseq, self._result(pend, replies, state))
        self._send(pend.envelope, reply)
        self._publish("control", {"cmd": pend.cmd, "args": pend.args, "ok": reply["ok"], "hseq": reply.get("hseq"),
                                  "error": reply.get("error"), "message": reply.get("message"), **state})

    def _result(self, pend: Pending, replies, state: dict) -> dict:
        last = replies[-1]
        v0 = int(last["value0"])
        out = dict(state)
        if pend.cmd in ("kill", "cancel-all", "session-stop"):
            out["canceled"] = v0
        elif pend.cmd == "status":
            out["open_orders"] = v0
            out.update(self._status_extra())
        elif pend.cmd == "set-limit":
            upd = pend.rids[next(iter(pend.rids))]
            out.update(limit=upd.key.split(".", 1)[1], value=upd.arg1, instrument=upd.instrument or "all",
                       version=pend.version, unit=pend.args.get("unit"), given=pend.args.get("value"))
        elif pend.cmd == "config":
            out["version"] = pend.version
            out["applied"] = [{"key": pend.rids[rid].key, "hseq": int(r["hseq"]), "value": pend.rids[rid].arg1}
                              for rid, r in zip(pend.rids, replies)]
        return out

    def _status_extra(self) -> dict:
        if self.tel is None:
            return {}
        g = self.tel.gauges()
        c = self.tel.counters()
        return {"hseq_now": g["hseq"], "config_version": max(g["config_version"], self.config_version),
                "counters": {k: c[k] for k in ("events", "orders_new", "orders_cancel", "fills", "denials",
                                               "anomalies", "errors", "ring_overflows")},
                "processes": [{k: p[k] for k in ("name", "pid", "alive", "heartbeat_age_s")}
                              for p in self.tel.processes()], **self._markets_status()}

    def _markets_status(self) -> dict:
        """Each feed with the health of its instruments (the core's: valid book after SNAPSHOT_END,
        until GAP/STALE/DISCONNECTED) and each venue with its open orders and ring fill (issue 16)."""
        if not self.markets:
            return {}
        healthy = {p["instrument"]: p.get("healthy", False) for p in self.tel.positions()}
        rings = {r["name"]: r["fill"] for r in self.tel.rings()}
        open_by_inst: dict[int, int] = {}
        for o in self.tel.orders():
            open_by_inst[o["instrument"]] = open_by_inst.get(o["instrument"], 0) + 1
        feeds = [dict(f, healthy=all(healthy.get(i, False) for i in f["instruments"]),
                      unhealthy=[i for i in f["instruments"] if not healthy.get(i, False)])
                 for f in self.markets.get("feeds", ())]
        venues = [dict(v, open_orders=sum(open_by_inst.get(i, 0) for i in v["instruments"]),
                       orders_ring_fill=rings.get(f"orders.{v['ring']}"),
                       exec_ring_fill=rings.get(f"exec.{v['ring']}"))
                  for v in self.markets.get("venues", ())]
        return {"feeds": feeds, "venues": venues}

    def _expire(self, now: float) -> None:
        for rid, pend in list(self.pending.items()):
            if now < pend.deadline or rid not in self.pending:
                continue
            for q in pend.rids:
                if q in self.pending:
                    del self.pending[q]
                    self._late.add(q)
            if len(self._late) > 10000:
                self._late.clear()
            hint = ""
            if self.tel is not None:
                h = [p for p in self.tel.processes() if p["name"] == "harness"]
                if h:
                    hint = f" (harness pid {h[0]['pid']}: {'running' if h[0]['running'] else 'not running'}, " \
                           f"last heartbeat {h[0]['heartbeat_age_s']:.1f} s ago)"
            msg = (f"{pend.cmd}: the harness did not answer within {self.timeout_s * 1000:.0f} ms{hint}; "
                   "the command may still take effect when the harness reads it")
            self.counts["timeouts"] += 1
            self._send(pend.envelope, P.error_reply(pend.client_id, pend.cmd, "timeout", msg))
            self._publish("control", {"cmd": pend.cmd, "ok": False, "error": "timeout", "message": msg})

    # ---- queries answered from the telemetry block -----------------------------------------
    def _query(self, rid, name, args) -> dict:
        if self.tel is None:
            raise P.RequestError("unavailable", f"{name}: no telemetry block attached to this control process")
        hseq = self.tel.gauge("hseq")
        if name == "orders":
            inst = self.instruments().resolve(args.get("instrument"))
            decs = self._decimals()
            rows = []
            for o in self.tel.orders():
                if inst is not None and o["instrument"] != inst.id:
                    continue
                pd, qd, sym = decs.get(o["instrument"], (None, None, str(o["instrument"])))
                o = dict(o, symbol=sym)
                if pd is not None:
                    o.update(price_str=format_fixed(o["price"], pd), qty_str=format_fixed(o["qty"], qd),
                             cum_qty_str=format_fixed(o["cum_qty"], qd))
                rows.append(o)
            rows.sort(key=lambda o: o["client_order_id"])
            return P.ok_reply(rid, name, hseq, {"orders": rows, "count": len(rows)})
        if name == "positions":
            # per instrument, each row naming its strategy; per strategy: sums over its instruments
            from livestack.strategies.telemetry import per_strategy

            positions, strats = self.tel.positions(), self.tel.strategies()
            names = {st["index"]: st["name"] for st in strats}
            rows = []
            for p in positions:
                pd, qd = p["price_decimals"], p["qty_decimals"]
                scale = 10 ** (qd)
                rows.append(dict(p, net_qty_str=format_fixed(p["net_qty"], qd),
                                 realized_pnl_quote=p["realized_pnl"] / scale / 10**pd,
                                 unrealized_pnl_quote=p["unrealized_pnl"] / scale / 10**pd,
                                 avg_price=(p["cost"] / p["net_qty"] / 10**pd) if p["net_qty"] else None,
                                 strategy_name=names.get(p.get("strategy", -1), "")))
            return P.ok_reply(rid, name, hseq, {"positions": rows, "strategies": per_strategy(positions, strats)})
        if name == "metrics":
            from livestack.telemetry.snapshot import compact

            return P.ok_reply(rid, name, hseq, compact(self.tel.snapshot()))
        raise P.RequestError("unknown_command", f"unknown query {name}")

    def _decimals(self) -> dict:
        out = {}
        for p in (self.tel.positions() if self.tel is not None else ()):
            out[p["instrument"]] = (p["price_decimals"], p["qty_decimals"], p["symbol"])
        for i in self._instruments_cfg.by_id.values():
            out[i.id] = (i.price_decimals, i.qty_decimals, i.symbol)
        return out

    # ---- PUB --------------------------------------------------------------------------------
    _TOPICS = {"TRADING_STATE": "trading_state", "FILL": "fill", "ANOMALY": "anomaly", "ORDER_STATE": "order_state",
               "ANOMALY_TEXT": "anomaly_text"}

    def _drain_events(self) -> bool:
        n = self.events.read(self._events_buf)
        if n == 0:
            return False
        raw = self._events_buf[:n].tobytes()
        for i in range(n):
            slot = raw[i * 128:(i + 1) * 128]
            d = record_to_dict(slot)
            kind = d["kind"].upper()
            self._publish(self._TOPICS.get(kind, d["kind"]), d)
        return True

    def _publish(self, topic: str, payload: dict) -> None:
        if self.pub is None:
            return
        try:
            self.pub.send_multipart([topic.encode(), P.encode(payload)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass


def run_process(cmd_ring: str, reply_ring: str, events_ring: str | None, telemetry: str | None,
                options: dict, stop=None) -> None:
    """Entry point of the control process (spawned by the supervisor; see docs/CONTRACTS.md).

    Binds the ROUTER (and PUB) endpoints, then serves until ``stop`` is set or SIGTERM. Refuses
    (exit code 2) an endpoint it cannot serve safely: tcp without CURVE keys, unreadable keys
    (``livestack.node.config`` reports the same before anything starts).
    """
    cpu = (options or {}).get("cpu", -1)
    if isinstance(cpu, int) and cpu >= 0:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    # A SIGTERM that comes while the server is still being built or bound (a supervisor that died
    # right after spawning us: its children's orphan watch stops them with SIGTERM) is kept and
    # honoured, instead of killing the process by signal before run() installs its handler.
    term = threading.Event()
    try:
        signal.signal(signal.SIGTERM, lambda *_: term.set())
    except ValueError:
        pass  # not the main thread
    server = ControlServer(cmd_ring, reply_ring, events_ring, telemetry, options)
    from livestack.telemetry import procmetrics  # request counts in /metrics (a mirror thread)

    metrics = procmetrics.start(cmd_ring, "control", procmetrics.control_updater(server.counts))
    try:
        try:
            server.bind()
        except ValueError as e:
            log.error("%s", e)
            raise SystemExit(2) from None
        log.info("listening on %s%s", server.endpoint, f", events on {server.pub_endpoint}" if server.pub else "")
        if not term.is_set():
            server.run(_AnyOf(stop, term))
    finally:
        if metrics is not None:
            metrics.stop()
        server.close()


class _AnyOf:
    """Set when any of the given events (``None`` ignored) is set."""

    def __init__(self, *events) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)
