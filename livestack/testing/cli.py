"""``livestack testing ...``: local stand-ins of real venues, for trying the stack without leaving the machine.

``livestack testing binance-exchange [--port P] [--capture FILE] [--api-key K --api-secret S]
[--ed25519-pub FILE] [--speed X] [--loop] [--fault KIND[:ARG]] ...`` serves the Binance test
exchange (``livestack.testing.binance_exchange``) until interrupted; it prints its endpoints as
one JSON line first.
"""

from __future__ import annotations

import json
import logging
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("testing", help="local stand-ins of real venues (test exchanges)")
    sub = p.add_subparsers(dest="testing_command", metavar="STAND-IN")
    b = sub.add_parser("binance-exchange", help="a protocol-faithful local Binance (spot + USD-M) on 127.0.0.1")
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, default=0, help="listening port (0: a free one, printed)")
    b.add_argument("--capture", action="append", default=[], metavar="FILE",
                   help="Binance capture to replay ('<ns> <json>' lines, .gz ok); spot or USD-M is detected "
                        "from the depth diffs; once per market (default: the shared captures)")
    b.add_argument("--market", action="append", choices=["spot", "usdm"], default=None,
                   help="markets to serve (default: both, or those of the given captures)")
    b.add_argument("--api-key", default=None, help="HMAC API key (default livestack-test-key)")
    b.add_argument("--api-secret", default=None, help="HMAC secret (default livestack-test-secret)")
    b.add_argument("--ed25519-pub", metavar="FILE", help="Ed25519 public key (PEM) accepted as --ed25519-api-key")
    b.add_argument("--ed25519-api-key", default=None, help="API key name of the Ed25519 key")
    b.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = recorded pace; 0 = stopped)")
    b.add_argument("--loop", action="store_true", help="start the capture over at its end")
    b.add_argument("--fault", action="append", default=[], metavar="KIND[:ARG]",
                   help="fault applied at start: ack_delay:S, drop_ack:N, dup_event:N, reorder_event:N, "
                        "drop_event:N, stall:S, time_offset:MS, rest_fail:N (more at runtime: POST "
                        "/_control/fault?kind=..&n=..&seconds=..)")
    b.add_argument("--spot-limits", default="", metavar="SPEC", help="e.g. REQUEST_WEIGHT:1M=600,ORDERS:10S=10")
    b.add_argument("--usdm-limits", default="", metavar="SPEC", help="e.g. ORDERS:10S=30")
    b.add_argument("--listen-key-ttl", type=float, default=3600.0, metavar="S", help="USD-M listenKey validity")
    b.set_defaults(func=_cmd_binance)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _cmd_binance(args) -> int:
    from livestack.testing import binance_exchange as bx

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    kw = {}
    markets = list(args.market or [])
    for path in args.capture:
        m = bx.capture_market(path)
        kw[f"{m}_capture"] = path
        if not args.market:
            markets.append(m)
    if not markets:
        markets = ["spot", "usdm"]
    if args.api_key or args.api_secret:
        if not (args.api_key and args.api_secret):
            print("livestack testing binance-exchange: --api-key and --api-secret go together", file=sys.stderr)
            return 2
        kw["api_key"], kw["api_secret"] = args.api_key, args.api_secret
    if args.ed25519_pub:
        kw["ed25519_pub"] = args.ed25519_pub
        if args.ed25519_api_key:
            kw["ed25519_api_key"] = args.ed25519_api_key
    try:
        ex = bx.start_exchange(port=args.port, host=args.host, markets=tuple(dict.fromkeys(markets)),
                               speed=args.speed, loop=args.loop, faults=args.fault, spot_limits=args.spot_limits,
                               usdm_limits=args.usdm_limits, listen_key_ttl_s=args.listen_key_ttl, **kw)
    except (OSError, ValueError) as e:
        print(f"livestack testing binance-exchange: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"port": ex.port, **ex.urls()}), flush=True)
    try:
        ex._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        ex.stop()
    return 0
