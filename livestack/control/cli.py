"""``livestack ctl COMMAND``: operate a running stack through its control surface.

Readable tables by default, the raw reply with ``--json``. Exit status: 0 ok, 1 the stack answered
with an error, 2 no answer (timeout, unauthorized, no stack found). Never hangs: every request has
``--timeout`` (default 3 s).

The endpoint: ``--endpoint``, else the stack ``--stack SESSION|NAME`` names in this host's registry
(``livestack ls``), else ``$LIVESTACK_CONTROL``, else the running stack of the registry (several: the
newest), else (a stack from before the registry) the newest control socket on disk.
"""

from __future__ import annotations

import glob
import os
import sys
import time

import orjson

COMMANDS_NO_ARGS = ("status", "session-start", "session-stop", "enable", "disable", "reduce-only", "kill",
                    "kill-reset", "positions", "metrics")


def discover_endpoint(stack: str | None = None) -> str | None:
    """``$LIVESTACK_CONTROL``, else the control endpoint of the stack ``stack`` names (session id or
    name) or of the running stack in this host's registry (``livestack ls``), else -- a stack from
    before the registry -- the newest control socket found on disk."""
    env = os.environ.get("LIVESTACK_CONTROL")
    if env and not stack:
        return env
    from livestack.node import registry

    try:
        entry = registry.find(stack)
    except LookupError:
        if stack:
            raise
        entry = None
    if entry is not None:
        if not entry.get("control"):
            raise LookupError(f"stack {entry['session']} runs without control (control.enabled = false)")
        return entry["control"]
    from livestack.control.server import default_session_dir

    cands = glob.glob(os.path.join("records", "*", "*.control.sock"))
    cands += glob.glob(os.path.join(default_session_dir(), "*", "control.sock"))
    cands = [c for c in cands if os.path.exists(c)]
    if not cands:
        return None
    best = max(cands, key=lambda p: os.stat(p).st_mtime)
    return "ipc://" + os.path.abspath(best)


def _value(text: str):
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return int(t)
    except ValueError:
        return t


def _client(args):
    from livestack.control.client import ControlClient

    endpoint = args.endpoint or discover_endpoint(getattr(args, "stack", None))
    if not endpoint:
        raise LookupError("no running livestack stack found on this host (livestack ls): start one with "
                          "`livestack run`, or pass --endpoint / set LIVESTACK_CONTROL")
    return ControlClient(endpoint, timeout=args.timeout, server_key=_server_key(args), keys=_keys(args))


def _server_key(args):
    return args.server_key or os.environ.get("LIVESTACK_CONTROL_SERVER_KEY") or None


def _keys(args):
    return args.keys or os.environ.get("LIVESTACK_CONTROL_KEYS") or None


def _request(args) -> tuple[str, dict]:
    cmd = args.ctl_command
    if cmd in COMMANDS_NO_ARGS:
        return cmd, {}
    if cmd in ("cancel-all", "orders"):
        return cmd, {"instrument": args.instrument}
    if cmd == "set-limit":
        # the value as typed: the stack reads it in the limit's unit and says which (--raw: an int
        # in fixed-point units)
        v = args.value.strip()
        value = int(v) if args.raw else (v.lower() == "true" if v.lower() in ("true", "false") else v)
        return cmd, {"limit": args.limit, "value": value, "instrument": args.instrument}
    if cmd == "config":
        settings = {}
        for item in args.settings:
            if "=" not in item:
                raise ValueError(f"config: expected KEY=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            settings[k.strip()] = _value(v)
        return cmd, {"set": settings, "instrument": args.instrument}
    raise ValueError(f"unknown command {cmd}")


def set_limit_text(res: dict) -> str:
    """``risk.max_position = 5 BTC (500000000 fixed-point units) for instrument 1``."""
    from livestack.units import UnitError, split_value

    unit, given = res.get("unit"), res.get("given")
    if isinstance(given, str):
        try:
            bare = split_value(given)[1] == ""
        except UnitError:
            bare = False
        shown = f"{given} {unit}" if bare and unit else given
        shown += f" ({res['value']} fixed-point units)" if str(res["value"]) != given.strip() else ""
    else:
        shown = f"{res['value']} (fixed-point units; counted in {unit})" if unit else str(res["value"])
    return f"risk.{res['limit']} = {shown} for instrument {res['instrument']}"


def _print_human(reply: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not reply.get("ok"):
        con.print(f"[bold red]error[/] ({reply.get('error')}): {reply.get('message')}", soft_wrap=True)
        return
    cmd, res = reply["cmd"], reply.get("result") or {}
    if cmd == "orders":
        t = Table(title=f"open orders ({res['count']}) at hseq {reply['hseq']}", title_justify="left")
        for col in ("client id", "venue id", "instrument", "side", "state", "price", "qty", "filled"):
            t.add_column(col, justify="left" if col in ("instrument", "side", "state") else "right")
        for o in res["orders"]:
            t.add_row(str(o["client_order_id"]), str(o["venue_order_id"]), o.get("symbol", str(o["instrument"])),
                      o["side"], o["state"], o.get("price_str", str(o["price"])), o.get("qty_str", str(o["qty"])),
                      o.get("cum_qty_str", str(o["cum_qty"])))
        con.print(t)
        return
    if cmd == "positions":
        t = Table(title=f"positions at hseq {reply['hseq']}", title_justify="left")
        for col in ("instrument", "strategy", "net qty", "avg price", "realized PnL", "unrealized PnL", "orders",
                    "fills", "denials"):
            t.add_column(col, justify="left" if col in ("instrument", "strategy") else "right")
        for p in res["positions"]:
            avg = p.get("avg_price")
            t.add_row(p["symbol"], p.get("strategy_name") or "-", p["net_qty_str"],
                      "-" if avg is None else f"{avg:,.{p['price_decimals']}f}",
                      f"{p['realized_pnl_quote']:,.2f}", f"{p['unrealized_pnl_quote']:,.2f}",
                      f"{p.get('orders_sent', 0):,}", f"{p.get('fills', 0):,}", f"{p.get('denials', 0):,}")
        con.print(t)
        if res.get("strategies"):
            from livestack.telemetry.top import strategy_table

            con.print(strategy_table(res["strategies"], "per strategy (sums over its instruments; PnL: quote currency)"))
        return
    if cmd == "metrics":
        from livestack.telemetry.top import render

        con.print(render(res, None, con.width))
        return
    head = f"[bold green]ok[/] {cmd} at hseq {reply['hseq']}"
    state = res.get("trading_state")
    if state:
        style = {"ACTIVE": "green", "REDUCING": "yellow", "HALTED": "red"}.get(state, "")
        head += f": trading [{style}]{state}[/]"
        head += ", kill latched" if res.get("kill_latched") else ""
        head += ", session active" if res.get("session_active") else ", session not started"
    if "canceled" in res:
        head += f", {res['canceled']} order(s) canceled"
    con.print(head, soft_wrap=True)
    if cmd == "status":
        t = Table(show_header=True, title="status", title_justify="left")
        t.add_column("field")
        t.add_column("value", justify="right")
        t.add_row("open orders", str(res.get("open_orders")))
        t.add_row("config version", str(res.get("config_version", "-")))
        for k, v in (res.get("counters") or {}).items():
            t.add_row(k, f"{v:,}")
        con.print(t)
        if res.get("processes"):
            p = Table(title="processes", title_justify="left")
            for col in ("process", "pid", "health", "heartbeat"):
                p.add_column(col)
            for x in res["processes"]:
                p.add_row(x["name"], str(x["pid"]), "[green]ok[/]" if x["alive"] else "[bold red]DOWN[/]",
                          f"{x['heartbeat_age_s']:.1f} s ago")
            con.print(p)
    elif cmd in ("config", "set-limit"):
        con.print(f"config version {res.get('version')}")
        for a in res.get("applied", []):
            con.print(f"  {a['key']} = {a['value']} (hseq {a['hseq']})")
        if cmd == "set-limit":
            con.print("  " + set_limit_text(res), soft_wrap=True)


def _cmd_ctl(args) -> int:
    from livestack.control.client import ControlError, ControlTimeout, ControlUnauthorized

    if args.ctl_command == "keygen":
        return _keygen(args)
    if args.ctl_command == "events":
        return _events(args)
    try:
        cmd, req_args = _request(args)
        with _client(args) as c:
            reply = c.request(cmd, req_args)
    except (LookupError, ValueError) as e:
        print(f"livestack ctl: {e}", file=sys.stderr)
        return 2
    except (ControlTimeout, ControlUnauthorized, ControlError) as e:
        if args.json:
            print(orjson.dumps({"ok": False, "error": "timeout" if isinstance(e, ControlTimeout) else "unauthorized",
                                "message": str(e)}).decode())
        else:
            print(f"livestack ctl: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(reply, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_human(reply)
    return 0 if reply.get("ok") else 1


def _events(args) -> int:
    from livestack.control.client import EventSubscriber, events_endpoint

    endpoint = args.pub_endpoint or (events_endpoint(args.endpoint or discover_endpoint(getattr(args, "stack", None)) or ""))
    if not endpoint:
        print("livestack ctl events: no PUB endpoint: pass --pub-endpoint", file=sys.stderr)
        return 2
    sub = EventSubscriber(endpoint, topics=args.topic or ("",), server_key=_server_key(args), keys=_keys(args))
    got = 0
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        while args.count is None or got < args.count:
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                break
            m = sub.next(left)
            if m is None:
                continue
            got += 1
            topic, payload = m
            print(orjson.dumps({"topic": topic, **payload}).decode() if args.json else f"{topic}: {payload}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0


def _keygen(args) -> int:
    from livestack.control.auth import keygen

    try:
        pub, sec = keygen(args.directory, args.name, force=args.force)
    except (OSError, ValueError) as e:
        print(f"livestack ctl keygen: {e}", file=sys.stderr)
        return 2
    print(f"public certificate: {os.path.abspath(pub)}\n"
          f"secret certificate: {os.path.abspath(sec)} (mode 0600: keep it private)\n"
          "server: [control] curve_secret_key = the server's secret certificate,\n"
          "        curve_authorized_keys = [the clients' public certificates] (or a directory of them)\n"
          "client: livestack ctl --server-key SERVER.key --keys CLIENT.key_secret ...")
    return 0


def register(sub) -> None:
    import argparse

    def _common(suppress: bool):
        # the options are accepted before and after COMMAND; the sub-command copies default to
        # SUPPRESS so they do not overwrite a value given before COMMAND
        d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
        c = argparse.ArgumentParser(add_help=False)
        c.add_argument("--endpoint", default=d(None),
                       help="control endpoint (ipc://PATH or tcp://HOST:PORT); default: discover")
        c.add_argument("--stack", default=d(None), metavar="SESSION|NAME",
                       help="the running stack to operate (livestack ls); default: the only/newest one")
        c.add_argument("--json", action="store_true", default=d(False), help="print the raw JSON reply")
        c.add_argument("--timeout", type=float, default=d(3.0), metavar="S", help="reply timeout (default 3 s)")
        c.add_argument("--server-key", default=d(None), metavar="KEY",
                       help="server CURVE public key (certificate file or Z85); default $LIVESTACK_CONTROL_SERVER_KEY")
        c.add_argument("--keys", default=d(None), metavar="FILE",
                       help="this client's CURVE secret certificate (from `ctl keygen`); "
                            "default $LIVESTACK_CONTROL_KEYS")
        return c

    common = _common(True)
    ctl = sub.add_parser("ctl", help="operate a running stack (ZeroMQ control surface)", parents=[_common(False)])
    cmds = ctl.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True)
    from livestack.control.protocol import COMMANDS

    for name in COMMANDS_NO_ARGS:
        cmds.add_parser(name, help=COMMANDS[name].doc, parents=[common])
    for name in ("cancel-all", "orders"):
        p = cmds.add_parser(name, help=COMMANDS[name].doc, parents=[common])
        p.add_argument("--instrument", help="instrument id or symbol (default: all)")
    p = cmds.add_parser("set-limit", help=COMMANDS["set-limit"].doc, parents=[common])
    p.add_argument("limit", help="risk limit name, e.g. max_position")
    p.add_argument("value", help="the value in the limit's unit, optionally with it: '5 BTC' (sizes: the base "
                                 "currency), '100 USDT' (notional, loss: the quote currency), '0.5%%' or '50 bps' "
                                 "(price_band_bps), '200/s' (rates), a whole number for counts; the reply says the unit")
    p.add_argument("--raw", action="store_true", help="VALUE is an integer in fixed-point units")
    p.add_argument("--instrument", help="instrument id or symbol (default: all)")
    p = cmds.add_parser("config", help=COMMANDS["config"].doc, parents=[common])
    p.add_argument("settings", nargs="+", metavar="KEY=VALUE", help="risk.<limit>=V or strategy.<param>=V")
    p.add_argument("--instrument", help="instrument for risk.* keys (default: all)")
    p = cmds.add_parser("events", help="print state changes published on the PUB socket", parents=[common])
    p.add_argument("--pub-endpoint", help="PUB endpoint (default: beside the control socket)")
    p.add_argument("--topic", action="append", help="topic filter (trading_state, fill, anomaly, anomaly_text, order_state, control)")
    p.add_argument("--count", type=int, help="stop after N messages")
    p.add_argument("--seconds", type=float, help="stop after S seconds")
    p = cmds.add_parser("keygen", help="create a CURVE certificate pair (NAME.key, NAME.key_secret mode 0600)")
    p.add_argument("directory")
    p.add_argument("--name", default="livestack")
    p.add_argument("--force", action="store_true", help="replace an existing key pair of that name")
    ctl.set_defaults(func=_cmd_ctl)
