"""``livestack top`` and ``livestack metrics``: the dashboard and the Prometheus exporter."""

from __future__ import annotations

import sys
import time


def _stack(args) -> dict | None:
    """The registry entry (``livestack ls``) of the stack to show: ``--stack``, else the running one
    (several: the newest); None when ``--telemetry``/``--session`` name the block directly, or no
    registered stack runs (a stack from before the registry: the newest block)."""
    from livestack.node import registry

    if args.telemetry or args.session:
        return None
    try:
        return registry.find(args.stack)
    except LookupError:
        if args.stack:
            raise
        return None


def _block(args):
    from livestack.telemetry.block import TelemetryBlock, TelemetryError
    from livestack.telemetry.snapshot import find_block

    try:
        entry = _stack(args)
        args.entry = entry
        if entry is not None and not entry.get("telemetry"):
            raise LookupError(f"stack {entry['session']} has no telemetry block")
        name = args.telemetry or (entry["telemetry"] if entry else find_block(args.session))
        return TelemetryBlock.attach(name, timeout=args.attach_timeout)
    except (FileNotFoundError, LookupError, TelemetryError) as e:
        print(f"livestack: {e}", file=sys.stderr)
        return None


def _cmd_top(args) -> int:
    from livestack.telemetry import top

    blk = _block(args)
    if blk is None:
        return 2
    try:
        return top.run(blk, interval=args.interval, once=args.once, stack=args.entry)
    finally:
        blk.close()


def _cmd_metrics(args) -> int:
    from livestack.telemetry import exporter

    blk = _block(args)
    if blk is None:
        return 2
    try:
        if args.once:
            sys.stdout.write(exporter.exposition(blk))
            return 0
        slot = blk.register_process("exporter")
        exp = exporter.Exporter(blk, args.port, args.addr)
        print(f"serving {exp.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                blk.heartbeat(slot)
                time.sleep(0.25)
        except KeyboardInterrupt:
            pass
        finally:
            exp.close()
            blk.unregister_process(slot)
        return 0
    finally:
        blk.close()


def _common(p):
    p.add_argument("--stack", metavar="SESSION|NAME",
                   help="the running stack to show (livestack ls); default: the only/newest one")
    p.add_argument("--telemetry", metavar="NAME", help="telemetry segment name (default: the stack's)")
    p.add_argument("--session", metavar="ID", help="session id (the telemetry block of that session)")
    p.add_argument("--attach-timeout", type=float, default=0.0, metavar="S", help="wait this long for the block")


def register(sub) -> None:
    from livestack.telemetry.exporter import DEFAULT_PORT

    top = sub.add_parser("top", help="live terminal dashboard of a running stack (telemetry block)")
    _common(top)
    top.add_argument("--interval", type=float, default=1.0, metavar="S", help="refresh period (default 1 s)")
    top.add_argument("--once", action="store_true", help="render one frame (rates over --interval) and exit")
    top.set_defaults(func=_cmd_top)

    m = sub.add_parser("metrics", help="serve Prometheus /metrics from the telemetry block")
    _common(m)
    m.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0: any)")
    m.add_argument("--addr", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    m.add_argument("--once", action="store_true", help="print the exposition once to stdout and exit")
    m.set_defaults(func=_cmd_metrics)
