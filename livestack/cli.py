"""The ``livestack`` command: one entry point, a subcommand per capability."""

from __future__ import annotations

import argparse
import importlib
import sys

import livestack


def _cmd_demo(args) -> int:
    from livestack.testing.ring_demo import main as demo

    return demo(seconds=args.seconds)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="livestack", description="Low-latency live trading stack.")
    ap.add_argument("--version", action="version", version=f"livestack {livestack.__version__}")
    ap.add_argument("--log-level", default="WARNING", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                    help="log lines on stderr from this level (default WARNING; the session log file: INFO)")
    ap.add_argument("--log-json", action="store_true", help="log lines as JSON objects")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("ring-demo", help="two-process shared-memory ring demo (prints the rate)")
    demo.add_argument("--seconds", type=float, default=3.0, help="demo duration")
    demo.set_defaults(func=_cmd_demo)

    conf = sub.add_parser("config", help="check a config, or show it with defaults filled in (secrets redacted)")
    conf.add_argument("action", choices=["show", "check"])
    conf.add_argument("config", nargs="?", help="TOML config file (default: the embedded simulated stack)")
    conf.set_defaults(func=_cmd_config)

    shm = sub.add_parser("shm", help="list or clean up shared-memory segments")
    shm.add_argument("action", choices=["list", "clean"])
    shm.set_defaults(func=_cmd_shm)

    # Each capability registers its own subcommands: a module with `register(subparsers)`.
    for modname in PLUGINS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name and modname.startswith(e.name):
                continue  # capability not built yet
            raise
        mod.register(sub)
    return ap


#: Modules that add subcommands.
PLUGINS = (
    "livestack.node.cli",        # run
    "livestack.backtest.cli",    # backtest
    "livestack.records.cli",     # records, replay
    "livestack.control.cli",     # ctl
    "livestack.telemetry.cli",   # top, metrics
    "livestack.testing.cli",     # testing binance-exchange
    "livestack.strategies.cli",  # new-strategy, build-strategy
    "livestack.feeds.capture_cli",  # capture verify|convert
    "livestack.feeds.nats",      # md-relay (obs)
)


def _cmd_config(args) -> int:
    import json

    from livestack.node import config
    from livestack.secrets import redact_config

    try:
        cfg = config.load(args.config)
    except config.ConfigError as e:
        print(f"livestack: {e}", file=sys.stderr)
        return 2
    if args.action == "show":
        print(json.dumps(redact_config(cfg), indent=2, sort_keys=True))
    else:
        print(f"{args.config or 'embedded default'}: ok")
    return 0


def _cmd_shm(args) -> int:
    from livestack.ipc import shm

    if args.action == "list":
        for name in shm.list_segments():
            print(name)
    else:
        for name in shm.remove_stale():
            print("removed", name)
    return 0


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help()
        return 2
    from livestack import logs

    logs.setup(args.command or "livestack", level=args.log_level, as_json=args.log_json)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
