"""``livestack run [CONFIG]``: the whole stack (with no config: the embedded simulated venue)."""

from __future__ import annotations

import sys


def _run(args) -> int:
    from livestack.node import config
    from livestack.node.supervisor import Supervisor

    try:
        cfg = config.load(args.config)
    except config.ConfigError as e:
        print(f"livestack: {e}", file=sys.stderr)
        return 2
    if args.duration is not None:
        cfg["session"]["duration_s"] = args.duration
    sup = Supervisor(cfg)
    try:
        sup.start()
    except OSError as e:
        if e.errno == 28:  # records disk too full to start (writer.min_free_mb)
            print(f"livestack: {e.strerror}", file=sys.stderr)
            sup.stop(timeout=5)
            return 2
        sup.stop(timeout=5)
        raise
    except Exception:
        sup.stop(timeout=5)
        raise
    return sup.run()


def register(sub) -> None:
    p = sub.add_parser("run", help="run the whole stack (no CONFIG: simulated market + exchange + market maker)",
                       conflict_handler="resolve")
    p.add_argument("config", nargs="?", help="TOML config file")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_run)
