"""``livestack records export FILE --parquet DIR``: a session file as Parquet, one table per kind.

::

    FILE.h5 ──/fill, /order_state, /md_level … (slices of 1M rows)──▶ DIR/fills.parquet, order_states.parquet, …
            ──/journal (index of the inputs)─────────────────────────▶ DIR/journal.parquet (hseq, seq, kind, row)
            ──attrs instruments──────────────────────────────────────▶ DIR/instruments.parquet

Column types:

* header and fields as in ``spec.py`` (padding dropped), integers kept exact;
* enums (``kind``, ``side``, ``exec_type``, ``reason`` …) as **dictionary** columns of their names
  (a 0 the enum does not name reads ``NONE``, any other unknown value ``?<value>``);
  ``flags`` as a string of flag names (``JOURNAL|LAST_IN_MSG``);
* text (``ANOMALY_TEXT.text``: a strategy error's message) as a string column;
* ``exec``: EXEC rows of type FEE (a fill's fee, sent after the fill with its exec id) keep their raw
  ``last_qty``, whose scale is the fee's (``FEE_DECIMALS``), not the instrument's; the columns
  ``fee`` (scaled int64, scale in its metadata) and ``fee_asset`` spell them out, null on other rows;
* prices and sizes as **scaled int64**, exactly as recorded. The scale is per instrument; the
  Arrow schema metadata carries it: every price/qty field has ``unit`` and ``scale`` (JSON
  ``{instrument id: decimals}``) metadata, the table has ``livestack.instruments`` (JSON), and
  ``instruments.parquet`` lists ``instrument, symbol, price_decimals, qty_decimals`` for joins
  (``price / 10^price_decimals``; ``price units x qty units`` fields use the sum of both);
* ``session`` (dictionary, the file's session name) and ``symbol`` (dictionary) on every row, so
  tables of many sessions can be read together (``read_parquet('DIR/*/fills.parquet')``).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from livestack.schema import ENUMS, spec

#: dataset → table file stem
TABLES = {"anomaly": "anomalies", "anomaly_text": "anomaly_texts", "control_reply": "control_replies", "md_status": "md_statuses",
          "telemetry": "telemetry", "book_levels": "book_levels", "journal": "journal", "unknown": "unknown"}


def table_name(dataset: str) -> str:
    return TABLES.get(dataset, dataset + "s")


def _enum_dictionary(enum_name: str) -> tuple[list[str], dict[int, int]]:
    members = [(m.value, m.name) for m in ENUMS[enum_name]]
    if 0 not in {v for v, _ in members}:
        members.insert(0, (0, "NONE"))
    names = [n for _, n in members]
    return names, {v: i for i, (v, _) in enumerate(members)}


def _dict_column(values: np.ndarray, enum_name: str):
    import pyarrow as pa

    names, index = _enum_dictionary(enum_name)
    uniq, inv = np.unique(values.astype(np.int64), return_inverse=True)
    extra = []
    lut = np.empty(len(uniq), dtype=np.int32)
    for i, u in enumerate(uniq.tolist()):
        if u in index:
            lut[i] = index[u]
        else:
            extra.append(f"?{u}")
            lut[i] = len(names) + len(extra) - 1
    return pa.DictionaryArray.from_arrays(pa.array(lut[inv.reshape(-1)], pa.int32()), pa.array(names + extra, pa.string()))


def _flags_column(values: np.ndarray):
    import pyarrow as pa

    members = [(m.value, m.name) for m in ENUMS["RecordFlag"]]
    uniq, inv = np.unique(values, return_inverse=True)
    names = ["|".join(n for b, n in members if int(u) & b) for u in uniq.tolist()]
    return pa.DictionaryArray.from_arrays(pa.array(inv.reshape(-1).astype(np.int32)), pa.array(names, pa.string()))


def _const_dict(value: str, n: int):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string()))


def _scale(unit: str, instruments: dict[int, dict]) -> str | None:
    if unit == "price units":
        return json.dumps({str(i): int(d.get("price_decimals", 0)) for i, d in instruments.items()})
    if unit == "qty units":
        return json.dumps({str(i): int(d.get("qty_decimals", 0)) for i, d in instruments.items()})
    if unit == "price units x qty units":
        return json.dumps({str(i): int(d.get("price_decimals", 0)) + int(d.get("qty_decimals", 0))
                           for i, d in instruments.items()})
    return None


def to_arrow(arr: np.ndarray, rec: spec.Record | None, instruments: dict[int, dict], session: str,
             journal_first_hseq: int | None = None):
    """One slice of a dataset as a pyarrow Table (see the module docstring for the types)."""
    import pyarrow as pa

    fields = spec.JOURNAL_INDEX if rec is None and journal_first_hseq is not None else \
        (spec.record_fields(rec) if rec is not None else spec.HEADER)
    units = {f.name: f.unit for f in fields}
    docs = {f.name: f.doc for f in fields}
    cols, schema_fields = [], []

    def add(name, col, meta=None):
        cols.append(col)
        schema_fields.append(pa.field(name, col.type, metadata=meta))

    n = len(arr)
    add("session", _const_dict(session, n))
    if journal_first_hseq is not None:
        add("hseq", pa.array(np.arange(journal_first_hseq, journal_first_hseq + n, dtype=np.int64)),
            {"doc": "harness input sequence: entry k of the journal is hseq k + 1"})
    if "instrument" in (arr.dtype.names or ()):
        inst = arr["instrument"].astype(np.int64)
        uniq, inv = np.unique(inst, return_inverse=True)
        syms = [instruments.get(int(i), {}).get("symbol", "" if i == 0 else f"#{int(i)}") for i in uniq.tolist()]
        add("symbol", pa.DictionaryArray.from_arrays(pa.array(inv.reshape(-1).astype(np.int32)), pa.array(syms, pa.string())))
    for name in arr.dtype.names:
        if name.startswith("_") or name == "body":
            continue
        unit = units.get(name, "")
        v = arr[name]
        meta = {"unit": unit, "doc": docs.get(name, "")}
        if name == "kind":
            add(name, _dict_column(v, "RecordKind"), meta)
        elif name == "flags":
            add(name, _flags_column(v), meta)
        elif unit.startswith("enum "):
            add(name, _dict_column(v, unit.split()[1]), meta)
        elif unit == "bool":
            add(name, pa.array(v.astype(bool)), meta)
        elif unit == "utf-8":
            from livestack.records.reader import utf8_column

            add(name, pa.array(utf8_column(v, arr["length"] if "length" in arr.dtype.names else None),
                               pa.string()), meta)
        else:
            sc = _scale(unit, instruments)
            if sc is not None:
                meta["scale"] = sc  # decimals per instrument id: value / 10**scale[instrument]
            add(name, pa.array(np.ascontiguousarray(v)), meta)
    if rec is not None and rec.name == "EXEC":
        _add_fee_columns(arr, add)
    meta = {"livestack.instruments": json.dumps(list(instruments.values())), "livestack.session": session,
            "livestack.record": rec.name if rec is not None else ("JOURNAL_INDEX" if journal_first_hseq is not None else "")}
    return pa.Table.from_arrays(cols, schema=pa.schema(schema_fields, metadata=meta))


def _add_fee_columns(arr, add) -> None:
    """EXEC rows of type FEE carry a fill's fee in ``last_qty`` (scale ``FEE_DECIMALS``, not the
    instrument's) and its asset packed in ``orig_client_order_id`` (``livestack.venues.fees``):
    spelled out as ``fee`` (scaled int64, null on other rows) and ``fee_asset`` (string)."""
    import pyarrow as pa

    from livestack.schema import ExecType
    from livestack.venues.fees import FEE_DECIMALS, asset_name

    is_fee = arr["exec_type"] == int(ExecType.FEE)
    add("fee", pa.array(np.asarray(arr["last_qty"], dtype=np.int64), mask=~is_fee),
        {"unit": "fee units", "scale": str(FEE_DECIMALS),
         "doc": "fee of the fill with this exec id, in its asset (FEE rows only): value / 10**scale"})
    names = [asset_name(int(c)) if f else None for c, f in zip(arr["orig_client_order_id"].tolist(), is_fee.tolist())]
    add("fee_asset", pa.array(names, pa.string()), {"doc": "the fee's asset (FEE rows only)"})


def export_parquet(path: str, outdir: str, rows: int = 1 << 20, kinds: list[str] | None = None) -> dict[str, int]:
    """Write every non-empty dataset of session ``path`` to ``outdir/<table>.parquet``; returns rows per table.

    Streams in slices of ``rows`` rows (one row group each): bounded memory whatever the session size.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from livestack.records.reader import open_session

    os.makedirs(outdir, exist_ok=True)
    out: dict[str, int] = {}
    with open_session(path) as s:
        session = str(s.attrs.get("session", os.path.splitext(os.path.basename(path))[0]))
        inst = s.instruments
        for name in s.datasets():
            ds = s.file[name]
            if ds.shape[0] == 0 or (kinds and name not in kinds):
                continue
            kind = int(ds.attrs.get("kind", 0))
            rec = spec.RECORDS_BY_KIND.get(kind) if kind > 0 else None
            is_index = name == "journal" and s.journal_is_index()
            target = os.path.join(outdir, table_name(name) + ".parquet")
            writer = None
            done = 0
            try:
                for arr in s.iter_raw(name, rows):
                    t = to_arrow(arr, rec, inst, session, journal_first_hseq=done + 1 if is_index else None)
                    if writer is None:
                        writer = pq.ParquetWriter(target + ".tmp", t.schema, compression="zstd")
                    writer.write_table(t)
                    done += len(arr)
            finally:
                if writer is not None:
                    writer.close()
            os.replace(target + ".tmp", target)
            out[table_name(name)] = done
        it = list(inst.values())
        t = pa.table({"session": _const_dict(session, len(it)),
                      "instrument": pa.array([int(i["id"]) for i in it], pa.uint32()),
                      "symbol": pa.array([str(i.get("symbol", "")) for i in it]),
                      "price_decimals": pa.array([int(i.get("price_decimals", 0)) for i in it], pa.int32()),
                      "qty_decimals": pa.array([int(i.get("qty_decimals", 0)) for i in it], pa.int32())})
        pq.write_table(t, os.path.join(outdir, "instruments.parquet"))
        out["instruments"] = len(it)
    return out


def _cmd_export(args) -> int:
    if not os.path.exists(args.file):
        print(f"livestack records export: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        print("livestack records export: needs pyarrow (pip install pyarrow)", file=sys.stderr)
        return 2
    out = export_parquet(args.file, args.parquet)
    for k, v in out.items():
        print(f"  {k + '.parquet':<24} {v:>12,} rows")
    print(f"exported {args.file} to {args.parquet}")
    return 0


def register(rsub) -> None:
    p = rsub.add_parser("export", help="export a session file to Parquet (one table per record kind)")
    p.add_argument("file", help="session file (.h5)")
    p.add_argument("--parquet", metavar="DIR", required=True, help="output directory (one <kind>.parquet per table)")
    p.set_defaults(func=_cmd_export)
