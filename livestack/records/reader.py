"""Reading session files: pandas DataFrames with enum names and human prices, following a live file.

    >>> s = open_session("records/2026-11-24/1234-abcdef.h5")
    >>> s["fill"][["time", "symbol", "side", "price", "qty", "realized_pnl"]]
    >>> s["journal"]            # every consumed input in order: hseq, kind by name, row, header fields
    >>> s["journal_exec"]       # the consumed execution events, decoded (= s["exec"], the inputs)
    >>> s.refresh()             # a live (SWMR) file: see what the writer appended since

Fields are converted by the unit the schema declares for them (``spec.py``): ``enum X`` → the
member name, ``price units`` → price / 10**price_decimals of the row's instrument, ``qty units`` →
qty / 10**qty_decimals, ``price units x qty units`` → / 10**(price_decimals + qty_decimals),
``utf-8`` byte arrays (ANOMALY_TEXT.text) → str.
The instruments come from the file's ``instruments`` attribute. ``ts`` and ``ts_event`` stay int64
ns; a ``time`` column (UTC datetime) is added from ``ts``. Padding fields are dropped. An enum value
of 0 that the enum does not name reads ``NONE`` (e.g. ORDER_STATE.exec_type of a dispatch); any
other unknown value ``?<value>``.

Layout (schema 4): every consumed input is stored once, in the dataset of its kind, with the
JOURNAL flag; ``/journal`` is the ordered index of the inputs (``seq``, ``row``, ``kind``). Files of
schema <= 3 (a 128-byte copy of every input in ``/journal``) read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import h5py
import numpy as np
import pandas as pd

from livestack.records import booktop
from livestack.schema import DTYPES, ENUMS, SLOT128, ExecType, RecordFlag, spec

JOURNAL = "journal"
_JSON_ATTRS = ("config", "cpu", "instruments", "writer_counters")


def _units(rec: spec.Record) -> dict[str, str]:
    return {f.name: f.unit for f in spec.record_fields(rec)}


def decode_slots(slots: np.ndarray, kind: int) -> np.ndarray:
    """View 128-byte slots (SLOT128) of one kind as that kind's record dtype (copies)."""
    dt = DTYPES[spec.RECORDS_BY_KIND[kind].name]
    raw = np.ascontiguousarray(slots).view(np.uint8).reshape(len(slots), -1)
    return np.ascontiguousarray(raw[:, :dt.itemsize]).view(dt).reshape(len(slots))


def _enum_names(values: np.ndarray, enum_name: str) -> np.ndarray:
    """Member names (object array); a value the enum does not know reads ``?<value>``."""
    e = ENUMS.get(enum_name)
    if e is None:
        return values
    names = {m.value: m.name for m in e}
    names.setdefault(0, "NONE")  # 0 = not set (a dispatch's exec_type, a cancel's tif ...)
    uniq, inverse = np.unique(values, return_inverse=True)
    lut = np.array([names.get(u, f"?{u}") for u in uniq.tolist()], dtype=object)
    return lut[inverse.reshape(-1)]


def utf8_column(v: np.ndarray, length: np.ndarray | None = None) -> list[str]:
    """A fixed-size utf-8 byte-array field (n, N) as strings: ``length`` bytes of each row when
    given, else up to the first NUL."""
    raw = np.ascontiguousarray(v, dtype=np.uint8)
    out = []
    for k in range(len(raw)):
        b = raw[k].tobytes()
        b = b[:int(length[k])] if length is not None else b.split(b"\0", 1)[0]
        out.append(b.decode("utf-8", "replace"))
    return out


def _flag_names(values: np.ndarray) -> list[str]:
    members = [(m.value, m.name) for m in ENUMS["RecordFlag"]]
    cache: dict[int, str] = {}
    out = []
    for v in values.tolist():
        s = cache.get(v)
        if s is None:
            s = cache[v] = "|".join(n for b, n in members if v & b)
        out.append(s)
    return out


def to_frame(arr: np.ndarray, rec: spec.Record | None, instruments: dict[int, dict]) -> pd.DataFrame:
    """A DataFrame of records ``arr`` with enums as names and fixed point as human decimals.

    ``rec`` None means header-only slots (the journal): kind is decoded, the body is dropped.
    """
    units = _units(rec) if rec is not None else {f.name: f.unit for f in spec.HEADER}
    inst = arr["instrument"].astype(np.int64)
    ids = np.unique(inst)
    pdec = np.zeros(len(arr), dtype=np.int64)
    qdec = np.zeros(len(arr), dtype=np.int64)
    sym = np.empty(len(arr), dtype=object)
    for i in ids.tolist():
        m = inst == i
        info = instruments.get(i)
        if info is None:
            sym[m] = "" if i == 0 else f"#{i}"
            pdec[m], qdec[m] = 0, 0
        else:
            sym[m] = info.get("symbol", f"#{i}")
            pdec[m], qdec[m] = int(info.get("price_decimals", 0)), int(info.get("qty_decimals", 0))
    cols: dict[str, object] = {}
    cols["time"] = pd.to_datetime(arr["ts"].astype(np.int64), unit="ns", utc=True)
    for name in arr.dtype.names:
        if name.startswith("_") or name == "body":
            continue
        unit = units.get(name, "")
        v = arr[name]
        if name == "kind":
            cols[name] = _enum_names(v.astype(np.int64), "RecordKind")
        elif name == "flags":
            cols[name] = _flag_names(v)
        elif unit.startswith("enum "):
            cols[name] = _enum_names(v.astype(np.int64), unit.split()[1])
        elif unit == "price units":
            cols[name] = v.astype(np.float64) / 10.0 ** pdec
        elif unit == "qty units":
            scale = qdec
            if name == "last_qty" and rec is not None and rec.name == "EXEC":   # EXEC FEE: the fee, 1e-8 units
                from livestack.venues.fees import FEE_DECIMALS

                scale = np.where(arr["exec_type"] == int(ExecType.FEE), FEE_DECIMALS, qdec)
            cols[name] = v.astype(np.float64) / 10.0 ** scale
        elif unit == "price units x qty units":
            cols[name] = v.astype(np.float64) / 10.0 ** (pdec + qdec)
        elif unit == "bool":
            cols[name] = v.astype(bool)
        elif unit == "utf-8":
            cols[name] = utf8_column(v, arr["length"] if "length" in arr.dtype.names else None)
        elif v.ndim > 1:
            cols[name] = [r.tobytes() for r in v]
        else:
            cols[name] = v
        if name == "instrument":
            cols["symbol"] = sym
    return pd.DataFrame(cols)


class Session(Mapping):
    """The DataFrames of one session file, one per record kind, loaded on first use.

    Keys: every dataset (``fill``, ``order_state``, ``order_cmd``, ``journal`` …) and
    ``journal_<kind>`` for each input kind present in the journal (``journal_md_level`` …).
    Also ``book_top``: the core's top N per input, joined from ``/book_levels`` (not listed in
    ``keys()``: it is derived from a dataset, and has no record ``seq`` column of its own).
    ``attrs`` holds the file attributes (JSON ones decoded), ``instruments`` id → dict.
    """

    def __init__(self, path: str, swmr: bool = True):
        self.path = path
        try:
            self.file = h5py.File(path, "r", libver="latest", swmr=swmr)
        except OSError:
            if swmr:
                raise
            # a plain open is refused while a writer has the file (or after one crashed): SWMR read works
            self.file = h5py.File(path, "r", libver="latest", swmr=True)
        self._cache: dict[str, pd.DataFrame] = {}
        self._load_attrs()

    def _load_attrs(self) -> None:
        a = {}
        for k, v in self.file.attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, np.generic):
                v = v.item()
            if k in _JSON_ATTRS and isinstance(v, str) and v:
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            a[k] = v
        self.attrs = a
        insts = a.get("instruments") or []
        self.instruments = {int(i["id"]): i for i in insts if isinstance(i, dict) and "id" in i}

    # --- raw access -------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return [k for k in self.file.keys() if isinstance(self.file[k], h5py.Dataset)]

    def raw(self, name: str) -> np.ndarray:
        """The dataset ``name`` as a numpy structured array (schema dtype)."""
        return self.file[name][()]

    def journal_kinds(self) -> list[str]:
        kinds = self._journal_kind_counts()
        return [spec.RECORDS_BY_KIND[k].name.lower() for k in sorted(kinds) if k in spec.RECORDS_BY_KIND]

    def iter_raw(self, name: str, rows: int = 1 << 20, field: str | None = None):
        """The dataset ``name`` (or one ``field`` of it) in slices of at most ``rows`` rows:
        bounded memory however big the session is."""
        ds = self.file[name]
        n = int(ds.shape[0])
        src = ds.fields(field) if field else ds
        for a in range(0, n, rows):
            yield src[a:min(n, a + rows)]

    def iter_frames(self, name: str, rows: int = 1 << 20):
        """:meth:`__getitem__`'s DataFrame of dataset ``name``, in pieces of at most ``rows`` rows."""
        if name == JOURNAL and self.journal_is_index():
            yield self.journal_frame()  # (an index: joined with its inputs' headers)
            return
        kind = int(self.file[name].attrs.get("kind", 0))
        rec = spec.RECORDS_BY_KIND.get(kind) if kind > 0 else None
        for arr in self.iter_raw(name, rows):
            yield to_frame(arr, rec, self.instruments)

    def tail(self, name: str, k: int = 1) -> pd.DataFrame:
        """The DataFrame of the last ``k`` rows of dataset ``name`` (reads only those)."""
        if name == JOURNAL and self.journal_is_index():
            return self.journal_frame().tail(k)
        ds = self.file[name]
        n = int(ds.shape[0])
        kind = int(ds.attrs.get("kind", 0))
        return to_frame(ds[max(0, n - k):n], spec.RECORDS_BY_KIND.get(kind) if kind > 0 else None,
                        self.instruments)

    def journal_is_index(self) -> bool:
        """True for schema-4 files (``/journal`` indexes the inputs), False for a v3 copy journal."""
        return JOURNAL in self.file and self.file[JOURNAL].dtype.names is not None \
            and "row" in self.file[JOURNAL].dtype.names

    def _journal_kind_counts(self) -> dict[int, int]:
        if JOURNAL not in self.file or self.file[JOURNAL].shape[0] == 0:
            return {}
        total = np.zeros(1 << 16, dtype=np.int64)
        for kinds in self.iter_raw(JOURNAL, rows=1 << 22, field="kind"):
            total += np.bincount(kinds.astype(np.int64), minlength=1 << 16)[:1 << 16]
        return {int(k): int(total[k]) for k in np.flatnonzero(total)}

    def journal_raw(self, kind: str | int) -> np.ndarray:
        """Consumed inputs of one kind, in order, decoded to that kind's dtype."""
        k = kind if isinstance(kind, int) else spec.RECORDS_BY_NAME[kind.upper()].kind
        if not self.journal_is_index():
            j = self.file[JOURNAL][()]
            return decode_slots(j[j["kind"] == k], k)
        name = spec.RECORDS_BY_KIND[k].name.lower()
        if name not in self.file:
            return np.zeros(0, DTYPES[spec.RECORDS_BY_KIND[k].name])
        arr = self.file[name][()]
        return arr[(arr["flags"] & int(RecordFlag.JOURNAL)) != 0]

    def journal_frame(self) -> pd.DataFrame:
        """Every consumed input in order: ``hseq`` (k + 1 for entry k), ``seq``, ``kind`` (name), ``row``
        (in the kind's dataset; v3 files: in /journal) and the inputs' header fields."""
        from livestack.records.replay import consumed_inputs

        parts = list(consumed_inputs(self.file))
        slots = np.concatenate(parts) if parts else np.zeros(0, SLOT128)
        head = np.zeros(len(slots), dtype=[(f.name, DTYPES["TIMER"][f.name]) for f in spec.HEADER])
        for f in spec.HEADER:
            head[f.name] = slots[f.name]
        head["flags"] |= np.uint8(int(RecordFlag.JOURNAL))  # as stored
        df = to_frame(head, None, self.instruments)
        df.insert(0, "hseq", np.arange(1, len(df) + 1, dtype=np.int64))
        if self.journal_is_index():
            df["row"] = self.file[JOURNAL]["row"].astype(np.int64)
        else:
            df["row"] = np.arange(len(df), dtype=np.int64)
        return df

    # --- Mapping ----------------------------------------------------------------------------
    def keys(self):
        return self.datasets() + [f"journal_{k}" for k in self.journal_kinds()]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def __contains__(self, key):
        return key in self.keys() or (key == booktop.NAME and booktop.DATASET in self.file)

    def __getitem__(self, key: str) -> pd.DataFrame:
        df = self._cache.get(key)
        if df is not None:
            return df
        if key == booktop.NAME and booktop.DATASET in self.file:
            # derived, not a dataset (so not among keys()): rows joined from the /book_levels records
            rows = booktop.rows(self.file)
            df = to_frame(rows, booktop.row_record(booktop.levels_of(rows.dtype)), self.instruments)
        elif key == JOURNAL:
            df = self.journal_frame()
        elif key.startswith("journal_"):
            name = key[len("journal_"):].upper()
            if name not in spec.RECORDS_BY_NAME:
                raise KeyError(key)
            df = to_frame(self.journal_raw(name), spec.RECORDS_BY_NAME[name], self.instruments)
        elif key in self.file:
            arr = self.raw(key)
            kind = int(self.file[key].attrs.get("kind", 0))
            rec = spec.RECORDS_BY_KIND.get(kind) if kind > 0 else None
            df = to_frame(arr, rec, self.instruments)
        else:
            raise KeyError(key)
        self._cache[key] = df
        return df

    def counts(self) -> dict[str, int]:
        """Rows per dataset, and per journaled input kind (``journal_<kind>``)."""
        out = {k: int(self.file[k].shape[0]) for k in self.datasets()}
        for k, c in self._journal_kind_counts().items():
            name = spec.RECORDS_BY_KIND[k].name.lower() if k in spec.RECORDS_BY_KIND else f"kind{k}"
            out[f"journal_{name}"] = c
        return out

    def seq_report(self, rows: int = 1 << 22) -> dict:
        """Contiguity of the record-stream seq over every dataset: the proof nothing was lost.

        One streaming pass: a byte per seq between the lowest first and the highest last row of
        the datasets (each holds its records in seq order; rows outside that range, which only a
        damaged file has, are collected apart). Memory is the seq span in bytes plus one slice.
        """
        # the journal index repeats the inputs' seqs (schema 4): the record set is every other dataset
        names = [k for k in self.datasets() if self.file[k].shape[0]
                 and not (k == JOURNAL and self.journal_is_index())]
        if not names:
            return {"records": 0, "first": 0, "last": 0, "missing": 0, "duplicates": 0, "contiguous": True}
        lo = min(int(self.file[k][0]["seq"]) for k in names)
        hi = max(int(self.file[k][-1]["seq"]) for k in names)
        lo, hi = min(lo, hi), max(lo, hi)
        seen = np.zeros(hi - lo + 1, dtype=bool)
        records = dups = 0
        outside = []
        for k in names:
            for seq in self.iter_raw(k, rows, field="seq"):
                seq = seq.astype(np.int64)
                records += len(seq)
                out = (seq < lo) | (seq > hi)
                if out.any():
                    outside.append(seq[out])
                    seq = seq[~out]
                idx = seq - lo
                if len(idx) > 1 and not (np.diff(idx) > 0).all():
                    idx, c = np.unique(idx, return_counts=True)
                    dups += int((c - 1).sum())
                dups += int(np.count_nonzero(seen[idx]))
                seen[idx] = True
        distinct = int(np.count_nonzero(seen))
        first, last = lo, hi
        if outside:
            o = np.concatenate(outside)
            u = np.unique(o)
            dups += len(o) - len(u)
            distinct += len(u)
            first, last = min(first, int(u[0])), max(last, int(u[-1]))
        missing = (last - first + 1) - distinct
        return {"records": records, "first": first, "last": last, "missing": missing,
                "duplicates": dups, "contiguous": missing == 0 and dups == 0 and first == 1}

    def end_report(self, seq: dict | None = None) -> dict:
        """Where the file ends against where the harness ended: the missing tail, if any.

        The writer stamps at close the harness's last record seq (``harness_last_seq``, from the
        telemetry block once the harness is done) and the records ring's producer position
        (``records_produced``); a file whose last seq is below them lost its tail. ``end_reason``
        is ``disk_full`` when the writer stopped at a full disk. A file the writer never closed
        (``stop_time`` empty) cannot say: ``known`` is False.
        """
        a = self.attrs
        seq = seq or self.seq_report()
        expected = int(a.get("harness_last_seq", 0) or 0) or int(a.get("records_produced", 0) or 0)
        closed = bool(a.get("stop_time"))
        last = int(seq["last"])
        return {"closed": closed, "known": expected > 0, "end_reason": str(a.get("end_reason", "") or ""),
                "file_last_seq": last, "harness_last_seq": expected,
                "missing_tail": max(0, expected - last) if expected else 0,
                "records_lost_disk_full": int(a.get("records_lost_disk_full", 0) or 0)}

    def refresh(self) -> None:
        """Pick up what a live writer appended (SWMR) and forget cached frames."""
        for k in self.datasets():
            self.file[k].refresh()
        self._cache.clear()

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<Session {self.path} " + " ".join(f"{k}={n}" for k, n in self.counts().items() if n) + ">"


def open_session(path: str, swmr: bool = True) -> Session:
    """Open a session file (complete, live, or left by a crashed writer) for reading.

    Returns a :class:`Session`: a mapping of record kind → pandas DataFrame with enum names and
    human prices and sizes. SWMR read mode by default, so a file being written can be followed
    with :meth:`Session.refresh`.
    """
    return Session(path, swmr=swmr)
