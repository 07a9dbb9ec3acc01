"""``livestack replay FILE [--verify]``: run a session's journal through the Core Runtime again.

::

    consumed_inputs(file): /journal index (kind, row) ──▶ rows of /md_level /exec /control_cmd /timer …
      in hseq order, as SLOT128, JOURNAL flag cleared ──▶ Core(config of the file)
                                                                              .process_array(inputs, hseq0=1)
                                                                                 │            │
                                     recorded /order_cmd (seq order) ◀─compare─ orders      records ─compare─▶ recorded
                                                                                                       outputs of every
                                                                                                       other kind, merged
                                                                                                       by seq

The core is built exactly as the harness builds it (``livestack.harness.process.build_core``) from
the ``config`` attribute the supervisor stored in the file. The harness stamps its input sequence
``hseq`` 1, 2, 3 … on the inputs in the order it journals them, so replay uses ``hseq0=1``.

Comparison is byte for byte over each record's own size, except the header ``seq`` (the harness
overwrites it with the record-stream sequence on the way to the ring). ``--verify`` reports the
first divergence: which stream, which record, which input caused it, which fields differ.

:func:`consumed_inputs` is THE way to get a session's inputs in the order the harness consumed
them, whatever the file layout (schema 4 index, or the 128-byte copies of schema <= 3): replay uses
it, and so can anything that rebuilds a core's state from a session (a restarted harness).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import numpy as np

from livestack.schema import DTYPES, SLOT128, RecordFlag, spec

_SEQ = slice(8, 16)
_SIZE_BY_KIND = np.zeros(1 << 16, dtype=np.int64)
for _r in spec.RECORDS:
    _SIZE_BY_KIND[_r.kind] = _r.size


def consumed_inputs(source, start: int = 0, stop: int | None = None, batch: int = 1 << 18):
    """Yield the inputs a session's harness consumed, in consumption order, as SLOT128 batches.

    Parameters
    ----------
    source : str, h5py.File or Session
        A session file (path), or an open one (``h5py.File``, or a ``Session`` of ``open_session``).
    start, stop : int
        Journal entries ``[start, stop)`` only: entry k is the input of hseq k + 1 (so ``start=h``
        resumes after hseq h). ``stop`` None: to the end of the journal as it is now.
    batch : int
        Most inputs per yielded array (bounded memory however long the session).

    Yields
    ------
    numpy.ndarray (SLOT128)
        Each input in a 128-byte slot exactly as the core processed it, except: the header ``seq``
        is the record-stream seq the harness stamped on its journal entry, and the JOURNAL flag is
        cleared (so ``Core.process_array(batch, hseq0=start + 1)`` re-runs them). 64-byte kinds are
        zero-padded to 128 bytes, as on the ring.

    Works on both layouts: schema >= 4 (``/journal`` indexes ``(kind, row)`` into the kinds'
    datasets) and schema <= 3 (``/journal`` holds 128-byte copies).
    """
    import h5py

    from livestack.records.reader import Session

    if isinstance(source, str):
        with h5py.File(source, "r", libver="latest", swmr=True) as f:
            yield from consumed_inputs(f, start, stop, batch)
        return
    f = source.file if isinstance(source, Session) else source
    if "journal" not in f:
        return
    j = f["journal"]
    n = int(j.shape[0]) if stop is None else min(int(stop), int(j.shape[0]))
    index = j.dtype.names is not None and "row" in j.dtype.names
    clear = np.uint8(0xFF & ~int(RecordFlag.JOURNAL))
    names = {r.kind: r.name.lower() for r in spec.RECORDS}
    datasets = {}
    for a in range(max(0, int(start)), n, batch):
        b = min(n, a + batch)
        if not index:
            out = np.ascontiguousarray(j[a:b])
        else:
            ent = j[a:b]
            m = b - a
            out = np.zeros(m, SLOT128)
            raw = out.view(np.uint8).reshape(m, 128)
            kinds = ent["kind"]
            rows_all = ent["row"].astype(np.int64)
            # the entries grouped by kind, each group in journal order (one stable sort, not a
            # comparison per kind): a kind's inputs are (nearly) contiguous rows of its dataset,
            # read with one hyperslab and, when exactly contiguous, copied without a gather
            order = np.argsort(kinds, kind="stable")
            ks = kinds[order]
            cuts = (np.flatnonzero(ks[1:] != ks[:-1]) + 1).tolist()
            for s0, e0 in zip([0] + cuts, cuts + [m]):
                k = int(ks[s0])
                sel = order[s0:e0]
                rows = rows_all[sel]
                ds = datasets.get(k)
                if ds is None:
                    ds = datasets[k] = f[names.get(k, "unknown")]
                lo, hi = int(rows.min()), int(rows.max()) + 1
                got = ds[lo:hi]
                size = got.dtype.itemsize
                u = got.view(np.uint8).reshape(hi - lo, size)
                if hi - lo == len(sel) and (len(sel) < 2 or bool((rows[1:] - rows[:-1] == 1).all())):
                    raw[sel, :size] = u            # rows lo, lo+1, ... in journal order
                else:
                    raw[sel, :size] = u[rows - lo]
        out["flags"] &= clear
        yield out


class ReplayError(RuntimeError):
    """The file cannot be replayed (no config, no journal, core not available)."""


@dataclass
class ReplayResult:
    inputs: int = 0
    orders: int = 0
    records: int = 0
    recorded_orders: int = 0
    recorded_records: int = 0
    verified: bool | None = None
    divergence: dict | None = None
    replayed_kinds: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _recorded_outputs(f) -> tuple[np.ndarray, np.ndarray]:
    """(ORDER_CMD rows, every other output as SLOT128 rows), each in record-stream seq order."""
    orders = f["order_cmd"][()] if "order_cmd" in f else np.zeros(0, DTYPES["ORDER_CMD"])
    parts = []
    for rec in spec.RECORDS:
        name = rec.name.lower()
        if name == "order_cmd" or name not in f or f[name].shape[0] == 0:
            continue
        rows = f[name][()]
        rows = rows[(rows["flags"] & int(RecordFlag.JOURNAL)) == 0]  # inputs (schema 4) are not outputs
        if len(rows) == 0:
            continue
        slots = np.zeros(len(rows), SLOT128)
        slots.view(np.uint8).reshape(len(rows), 128)[:, :rec.size] = rows.view(np.uint8).reshape(len(rows), rec.size)
        parts.append(slots)
    recs = np.concatenate(parts) if parts else np.zeros(0, SLOT128)
    recs = recs[np.argsort(recs["seq"], kind="stable")]
    return orders, recs


def _first_mismatch(rec: np.ndarray, rep: np.ndarray, sizes: np.ndarray) -> int | None:
    """Index of the first row whose bytes differ (own size, header seq excluded), or None."""
    n = min(len(rec), len(rep))
    width = rec.dtype.itemsize
    a = rec[:n].view(np.uint8).reshape(n, width)
    b = rep[:n].view(np.uint8).reshape(n, width)
    cols = np.arange(width)
    step = 1 << 16
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        diff = a[lo:hi] != b[lo:hi]
        diff[:, _SEQ] = False
        diff &= cols[None, :] < sizes[lo:hi, None]
        bad = np.flatnonzero(diff.any(axis=1))
        if len(bad):
            return lo + int(bad[0])
    return None if len(rec) == len(rep) else n


def _fields(row, kind: int) -> dict | None:
    rec = spec.RECORDS_BY_KIND.get(kind)
    if row is None or rec is None:
        return None
    r = np.frombuffer(row.tobytes()[:rec.size], dtype=DTYPES[rec.name])[0]
    return {n: r[n].tolist() for n in r.dtype.names if n != "seq" and not n.startswith("_")}


def _kind_name(kind: int):
    return spec.RECORDS_BY_KIND[kind].name if kind in spec.RECORDS_BY_KIND else kind


def _describe(row_rec, row_rep, kind_rec: int | None, kind_rep: int | None) -> dict:
    """What differs between the recorded and the replayed record (either may be missing)."""
    a = _fields(row_rec, kind_rec) if kind_rec is not None else None
    b = _fields(row_rep, kind_rep) if kind_rep is not None else None
    out = {"kind": _kind_name(kind_rec) if kind_rec is not None else None,
           "replayed_kind": _kind_name(kind_rep) if kind_rep is not None else None}
    if a is not None and b is not None and kind_rec == kind_rep:
        out["fields"] = {k: {"recorded": a[k], "replayed": b[k]} for k in a if a[k] != b[k]}
    else:
        out["recorded"], out["replayed"] = a, b
    return out


def check_strategy_identity(recorded, cfg: dict, force: bool = False) -> str | None:
    """Refuse (ReplayError) a strategy whose source changed since the session was recorded
    (sha256 in the session's ``strategy`` attribute) unless ``force``; returns a warning or None."""
    if isinstance(recorded, (bytes, str)):
        try:
            recorded = json.loads(recorded)
        except ValueError:
            recorded = None
    if isinstance(recorded, list):  # [[strategies]]: each one
        warnings = [w for r in recorded if (w := check_strategy_identity(r, cfg, force))]
        return "; ".join(warnings) or None
    if not isinstance(recorded, dict) or not recorded.get("sha256"):
        return None
    from livestack.strategies import loader

    ref = recorded.get("ref") or cfg["strategy"]["name"]
    try:
        _, now = loader.resolve(ref) if loader.is_reference(ref) else (None, {"sha256": ""})
    except loader.StrategyLoadError as e:
        raise ReplayError(f"strategy {ref!r} of the session cannot be loaded: {e}") from None
    if now["sha256"] == recorded["sha256"]:
        return None
    msg = (f"strategy {ref!r} changed since the session was recorded: source sha256 "
           f"{recorded['sha256'][:16]}... recorded, {now['sha256'][:16] or '(none)'}... now ({now.get('path')})")
    if not force:
        raise ReplayError(msg + "; replay it with --force to run the current code anyway")
    return msg


def read_journal(path: str, allow_empty: bool = False) -> tuple[dict, np.ndarray]:
    """(session config, the consumed inputs as SLOT128 in hseq order, JOURNAL flag cleared: ready for
    ``Core.process_array(inputs, 1)``). The one place that reads a session's inputs for a core:
    ``replay`` and a restarted harness (``livestack.harness.recovery``) both go through it; it reads
    either file layout through :func:`consumed_inputs`."""
    from livestack.records.reader import open_session

    with open_session(path) as s:
        cfg = s.attrs.get("config")
        if not isinstance(cfg, dict) or "strategy" not in cfg:
            raise ReplayError(f"{path}: no session config in the file (attribute 'config'); cannot replay")
        if "journal" not in s.file or s.file["journal"].shape[0] == 0:
            if allow_empty:
                return cfg, np.zeros(0, SLOT128)
            raise ReplayError(f"{path}: empty journal; nothing to replay")
        parts = list(consumed_inputs(s))
    return cfg, (np.concatenate(parts) if parts else np.zeros(0, SLOT128))


def replay(path: str, verify: bool = False, force: bool = False) -> ReplayResult:
    """Run the journal of session file ``path`` through a fresh Core; optionally verify outputs.
    A strategy whose source hash differs from the recorded one is refused unless ``force``."""
    from livestack.records.reader import open_session

    cfg, journal = read_journal(path)
    with open_session(path) as s:
        recorded_strategy = s.file.attrs.get("strategy")
        rec_orders, rec_records = _recorded_outputs(s.file) if verify else (None, None)
    try:
        from livestack.harness.process import build_core
    except ImportError as e:  # pragma: no cover - core not built
        raise ReplayError(f"the Core Runtime is not available in this build: {e}") from e
    warning = check_strategy_identity(recorded_strategy, cfg, force)
    if warning:
        print(f"livestack replay: warning: {warning}", file=sys.stderr)
    try:
        core = build_core(cfg)
    except ValueError as e:
        raise ReplayError(f"{path}: cannot build the session's core: {e}") from None
    inputs = journal
    orders, records = core.process_array(inputs, 1)
    res = ReplayResult(inputs=len(inputs), orders=len(orders), records=len(records))
    kinds, counts = np.unique(records["kind"], return_counts=True)
    res.replayed_kinds = {(spec.RECORDS_BY_KIND[k].name if k in spec.RECORDS_BY_KIND else str(k)): int(c)
                          for k, c in zip(kinds.tolist(), counts.tolist())}
    if not verify:
        return res
    res.recorded_orders, res.recorded_records = len(rec_orders), len(rec_records)
    jseq = journal["seq"].astype(np.int64)
    found = []
    for stream, rec, rep in (("orders", rec_orders, orders), ("records", rec_records, records)):
        if stream == "orders":
            sizes = np.full(max(len(rec), len(rep)), 64)
        else:
            sizes = _SIZE_BY_KIND[rec["kind"]] if len(rec) else np.zeros(0, np.int64)
            if len(rep) > len(rec):  # replay produced more: compare its own sizes past the end
                sizes = np.concatenate([sizes, _SIZE_BY_KIND[rep["kind"][len(rec):]]])
        i = _first_mismatch(rec, rep, sizes)
        if i is None:
            continue
        row_rec = rec[i] if i < len(rec) else None
        row_rep = rep[i] if i < len(rep) else None
        okind = int(spec.RECORDS_BY_NAME["ORDER_CMD"].kind)
        kind_rec = None if row_rec is None else (int(row_rec["kind"]) if stream == "records" else okind)
        kind_rep = None if row_rep is None else (int(row_rep["kind"]) if stream == "records" else okind)
        d = {"stream": stream, "index": i, "recorded_total": len(rec), "replayed_total": len(rep)}
        if row_rec is not None:
            seq = int(row_rec["seq"])
            k = int(np.searchsorted(jseq, seq) - 1)
            d["recorded_seq"] = seq
            if k >= 0:
                d["after_input"] = {"hseq": k + 1, "journal_seq": int(jseq[k]),
                                    "kind": spec.RECORDS_BY_KIND[int(journal["kind"][k])].name
                                    if int(journal["kind"][k]) in spec.RECORDS_BY_KIND else int(journal["kind"][k])}
        d.update(_describe(row_rec, row_rep, kind_rec, kind_rep))
        found.append(d)
    res.verified = not found
    if found:  # the earliest in the record stream is the first divergence
        res.divergence = min(found, key=lambda d: d.get("recorded_seq", 1 << 63))
    return res


def _cmd_replay(args) -> int:
    try:
        r = replay(args.file, verify=args.verify, force=args.force)
    except ReplayError as e:
        print(f"livestack replay: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r.as_dict(), indent=2, default=str))
    else:
        print(f"replayed {r.inputs:,} journaled inputs of {args.file}: {r.orders:,} orders, {r.records:,} records")
        if r.verified is True:
            print(f"verify: OK — {r.orders:,} orders and {r.records:,} records bit-identical to the recording")
        elif r.verified is False:
            d = r.divergence
            print(f"verify: DIVERGED in the {d['stream']} stream at #{d['index']:,} "
                  f"(recorded {d['recorded_total']:,}, replayed {d['replayed_total']:,})")
            if "recorded_seq" in d:
                print(f"  recorded seq {d['recorded_seq']:,}, kind {d['kind']}; replayed kind {d['replayed_kind']}")
            if "after_input" in d:
                a = d["after_input"]
                print(f"  caused by input hseq {a['hseq']:,} (journal seq {a['journal_seq']:,}, {a['kind']})")
            for name, v in (d.get("fields") or {}).items():
                print(f"  {name}: recorded {v['recorded']}  replayed {v['replayed']}")
            for which in ("recorded", "replayed"):
                if d.get(which) is not None:
                    print(f"  {which}: " + ", ".join(f"{k}={v}" for k, v in d[which].items()))
                elif which in d:
                    print(f"  {which}: (none: the stream ended)")
    return 0 if r.verified in (True, None) else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("replay", help="re-run a session's journal through the core (--verify: bit-identical)")
    p.add_argument("file", help="session file (.h5)")
    p.add_argument("--verify", action="store_true", help="compare dispatches and records with the recording")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--force", action="store_true",
                   help="replay even when the strategy's source changed since the recording (sha256 differs)")
    p.set_defaults(func=_cmd_replay)
