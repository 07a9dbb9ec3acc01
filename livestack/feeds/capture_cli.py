"""``livestack capture verify|convert``: check a recorded capture with the venue's own book procedure,
or rewrite it in the livestack capture format.

``verify FILE --venue binance|okx|kraken [--format livestack|cryptofeed] [--json]`` runs every
message through the same decoder the live feed uses (instruments are made up from the capture:
each symbol gets the decimals a pre-scan finds in it, so every string converts exactly) and prints
messages, book updates (MD_LEVEL records), trades, checksum checks passed/failed, gaps (sequence
breaks, checksum mismatches, Binance ``U``/``u``/``pu`` breaks) and malformed lines/messages. Exit
status 1 on a checksum failure or a gap, 2 on a file it cannot read, else 0.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np

from livestack.feeds.capture_formats import FORMATS, read_messages, write_livestack

VENUES = ("binance", "okx", "kraken")
VERIFY_KEYS = ("messages", "book_updates", "trades", "checksum_ok", "checksum_failed", "gaps", "malformed")


def _count_records(out, acc: dict) -> None:
    from livestack.schema import RecordKind

    n = out.n
    if n:
        kinds = np.asarray(out.arr["kind"][:n])
        acc["book_updates"] += int(np.count_nonzero(kinds == int(RecordKind.MD_LEVEL)))
        acc["trades"] += int(np.count_nonzero(kinds == int(RecordKind.MD_TRADE)))
        out.truncate(0)


def _binance_setup(msgs):
    """Instruments and market of a Binance capture, from its stream names and strings."""
    from livestack.config import Instrument
    from livestack.feeds.l2book import decimals_of
    import msgspec

    seen: dict[str, list] = {}
    futures = False
    for m in msgs:
        try:
            env = msgspec.json.decode(m.data)
            stream, d = env["stream"], env["data"]
        except Exception:
            continue
        sym = stream.split("@", 1)[0].upper()
        dec = seen.setdefault(sym, [0, 0])
        if type(d) is not dict:
            continue
        if "pu" in d:
            futures = True
        for lv in [x for k in ("b", "a") if type(d.get(k)) is list for x in d[k]]:
            if type(lv) is list and len(lv) == 2:
                dec[0] = max(dec[0], decimals_of(lv[0]))
                dec[1] = max(dec[1], decimals_of(lv[1]))
        for pk, qk in (("p", "q"), ("b", "B"), ("a", "A")):
            if type(d.get(pk)) is str:
                dec[0] = max(dec[0], decimals_of(d[pk]))
                dec[1] = max(dec[1], decimals_of(d.get(qk)))
    for m in msgs:  # snapshots widen too
        if m.data.lstrip()[:16].startswith(b'{"lastUpdateId"'):
            try:
                s = msgspec.json.decode(m.data)
            except Exception:
                continue
            syms = [m.symbol.upper()] if m.symbol else list(seen)
            for lv in (s.get("bids") or []) + (s.get("asks") or []):
                if type(lv) is list and len(lv) == 2:
                    for sym in syms:
                        if sym in seen:
                            seen[sym][0] = max(seen[sym][0], decimals_of(lv[0]))
                            seen[sym][1] = max(seen[sym][1], decimals_of(lv[1]))
    insts = [Instrument(i + 1, sym, "binance", min(max(p, 0), 18), min(max(q, 0), 18))
             for i, (sym, (p, q)) in enumerate(sorted(seen.items()))]
    return insts, ("usdm" if futures else "spot")


_STREAM = re.compile(rb'\A\s*\{\s*"stream"\s*:\s*"[a-z0-9_]+@([A-Za-z0-9_]+)')


def _unused_stream(data: bytes) -> bool:
    """A Binance combined-stream envelope of a kind the feed does not use (kline, aggTrade, ...)."""
    m = _STREAM.match(data[:80])
    return bool(m) and m.group(1) not in (b"depth", b"trade", b"bookTicker")


def verify(path, venue: str, fmt: str | None = None) -> dict:
    """Run a capture through the venue's decoder; returns the ``VERIFY_KEYS`` counts (and extras)."""
    if venue not in VENUES:
        raise ValueError(f"venue {venue!r}: expected one of {VENUES}")
    rd = read_messages(path, fmt)
    msgs = rd.messages
    acc = dict.fromkeys(VERIFY_KEYS, 0)
    if venue == "binance":
        from livestack.feeds.binance import BinanceDecoder

        insts, market = _binance_setup(msgs)
        dec = BinanceDecoder(insts, market)
        ignored = 0
        for i, m in enumerate(msgs):
            if m.data.lstrip()[:16].startswith(b'{"lastUpdateId"'):
                if m.symbol:
                    dec.on_snapshot(m.symbol, m.data, m.ts)
                else:  # native format: the snapshot names no symbol; only a straddling one is taken
                    for sym in dec.needing_snapshot() or [s.instrument.symbol for s in dec.syncs.values() if not s.synced]:
                        dec.on_snapshot(sym, m.data, m.ts)
            elif _unused_stream(m.data):
                ignored += 1  # a stream the feed does not subscribe to (kline, aggTrade ...): not malformed
            else:
                dec.on_message(m.data, m.ts)
            if (i & 1023) == 0:
                _count_records(dec.out, acc)
        _count_records(dec.out, acc)
        c = dec.c
        acc.update(messages=c.messages + ignored, gaps=c.gaps, malformed=c.malformed + rd.malformed,
                   snapshots=c.snapshots, market=market, symbols=[i.symbol for i in insts], ignored=ignored)
        return acc
    if venue == "okx":
        from livestack.feeds.okx import OkxDecoder as Dec, scan_decimals
    else:
        from livestack.feeds.kraken import KrakenDecoder as Dec, scan_decimals
    seen: dict = {}
    for m in msgs:
        scan_decimals(m.data, seen)
    auto = {s: (min(max(p, 0), 18), min(max(q, 0), 18)) for s, (p, q) in seen.items()}
    dec = Dec(auto_instruments=auto)
    for i, m in enumerate(msgs):
        dec.on_message(m.data, m.ts)
        if (i & 1023) == 0:
            _count_records(dec.out, acc)
    _count_records(dec.out, acc)
    c = dec.c
    acc.update(messages=c.messages, checksum_ok=c.checksum_ok, checksum_failed=c.checksum_failed,
               gaps=c.gaps, malformed=c.malformed + rd.malformed, snapshots=c.snapshots,
               ignored=c.ignored, control=c.control, symbols=sorted(dec.states))
    return acc


def _cmd_verify(args) -> int:
    try:
        r = verify(args.file, args.venue, args.format)
    except (OSError, ValueError) as e:
        print(f"livestack capture verify: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        for k in VERIFY_KEYS:
            print(f"{k:16s} {r[k]}")
        print(f"{'symbols':16s} {' '.join(r.get('symbols', []))}")
    return 1 if (r["checksum_failed"] or r["gaps"]) else 0


def _cmd_convert(args) -> int:
    try:
        rd = read_messages(args.file, args.format)
        n = write_livestack(args.out, rd.messages)
    except (OSError, ValueError) as e:
        print(f"livestack capture convert: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {n} messages ({rd.malformed} malformed lines left out, {rd.sent} sent and "
          f"{rd.connects} connect lines not needed)")
    return 0


def register(subparsers) -> None:
    cap = subparsers.add_parser("capture", help="verify a recorded capture, or convert it to the livestack format")
    sub = cap.add_subparsers(dest="capture_cmd", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="run a capture through the venue's book procedure and count what it finds")
    v.add_argument("file")
    v.add_argument("--venue", required=True, choices=VENUES)
    v.add_argument("--format", choices=FORMATS, default=None, help="default: detected from the first lines")
    v.add_argument("--json", action="store_true", help="one JSON object: " + ", ".join(VERIFY_KEYS))
    v.set_defaults(func=_cmd_verify)
    c = sub.add_parser("convert", help="rewrite a capture (e.g. cryptofeed raw) in the livestack capture format")
    c.add_argument("file")
    c.add_argument("out", help="output file ('.gz' for gzip)")
    c.add_argument("--format", choices=FORMATS, default=None, help="input format (default: detected)")
    c.set_defaults(func=_cmd_convert)
