"""``book_top``: the core's top N levels after every market-data input that changed them, one row
per input and instrument, joined from the BOOK_LEVELS records of the session file.

Why records and rows differ: a 128-byte record slot holds 5 levels of one side, so the core sends a
row as ``2 * ceil(N / 5)`` BOOK_LEVELS records (bids first, then asks; ``first`` = 0, 5, 10 ...),
all from one input in one ``process()`` call, consecutive in the record stream. The writer stores
them like every record kind (``/book_levels``: contiguous record seq, the same loss rules, replay
verifies them bit for bit); readers join them into rows of this layout (N = ``levels``)::

    hseq  ts  ts_event  instrument  complete | bid_px_0..N-1 | bid_qty_0.. | ask_px_0.. | ask_qty_0..

``hseq`` is the input's harness sequence, ``ts`` = ts_core, ``ts_event`` the venue time. Levels
past the book's end are 0. ``complete`` is 0 only for a row some of whose records are not in the
file (a session cut between two records of one row).
``livestack.records.open_session(f)["book_top"]`` gives the rows as a DataFrame in human units;
:func:`rows` gives them as a numpy array from an open h5py file.
"""

from __future__ import annotations

import numpy as np

from livestack.schema import DTYPES, Side, spec

NAME = "book_top"
NAME = "book_top"            # the DataFrame key
DATASET = "book_levels"      # the records in the file
KIND = spec.RECORDS_BY_NAME["BOOK_LEVELS"].kind
CHUNK = spec.BOOK_LEVELS_PER_RECORD
DEFAULT_LEVELS = 5
_BUY, _SELL = int(Side.BUY), int(Side.SELL)


def row_fields(levels: int) -> tuple[spec.Field, ...]:
    F = spec.Field
    head = (
        F("hseq", "u64", "count", "harness input sequence of the market-data input"),
        F("ts", "i64", "ns", "ts_core: the input's ts"),
        F("ts_event", "i64", "ns", "venue time of the input"),
        F("instrument", "u32", "id", "instrument id"),
        F("complete", "u8", "bool", "every record of the row reached the writer"),
        F("_pad", "u8", "", "padding", 3),
    )
    body = []
    for side in ("bid", "ask"):
        body += [F(f"{side}_px_{k}", "i64", "price units", f"{side} price, level {k} (0 = best)") for k in range(levels)]
        body += [F(f"{side}_qty_{k}", "i64", "qty units", f"{side} quantity, level {k}") for k in range(levels)]
    return head + tuple(body)


def row_record(levels: int) -> spec.Record:
    """A schema Record describing a row (units for the reader; not a ring record)."""
    return spec.Record(KIND, "BOOK_TOP", 0, "book_top row joined from BOOK_LEVELS records", row_fields(levels))


def row_dtype(levels: int) -> np.dtype:
    return np.dtype([(f.name, spec.TYPES[f.type][1], (f.count,)) if f.count > 1 else
                     (f.name, spec.TYPES[f.type][1]) for f in row_fields(levels)])


def levels_of(dtype: np.dtype) -> int:
    """N of a row dtype (from an existing dataset)."""
    return sum(1 for n in dtype.names if n.startswith("bid_px_"))


class Assembler:
    """Joins BOOK_LEVELS records (in stream order) into rows of ``row_dtype(levels)``.

    Records of a row that has not ended yet are kept until the rest comes (the next :meth:`add`,
    e.g. the next slice of a file being followed); :meth:`flush_partial` makes them an incomplete row.
    """

    def __init__(self, levels: int):
        self.levels = int(levels)
        self.dtype = row_dtype(self.levels)
        self.per_side = (self.levels + CHUNK - 1) // CHUNK
        self._pending: list[np.void] = []   # records of the row being assembled
        self.mismatched = 0                 # records whose levels differ from this file's N (cut/padded)

    def add(self, recs: np.ndarray) -> np.ndarray:
        """Rows completed by ``recs`` (BOOK_LEVELS records, dtype ``DTYPES['BOOK_LEVELS']``)."""
        fast = self._aligned(recs)
        if fast is not None:
            return fast
        out = []
        for r in recs:
            if self._pending and (int(r["hseq"]) != int(self._pending[0]["hseq"]) or
                                  int(r["instrument"]) != int(self._pending[0]["instrument"])):
                out.append(self._row(self._pending, complete=False))   # a row whose tail never came
                self._pending = []
            self._pending.append(r)
            levels = int(r["levels"])
            if int(r["side"]) == _SELL and int(r["first"]) + CHUNK >= levels:
                out.append(self._row(self._pending, complete=len(self._pending) == 2 * ((levels + CHUNK - 1) // CHUNK)))
                self._pending = []
        if not out:
            return np.zeros(0, dtype=self.dtype)
        return np.concatenate(out)

    def _aligned(self, recs: np.ndarray):
        """The common case in one numpy pass: whole rows only, of this file's N, nothing pending."""
        per_row = 2 * self.per_side
        n = len(recs)
        if self._pending or n == 0 or n % per_row or not (recs["levels"] == self.levels).all():
            return None
        rows = n // per_row
        grid = recs.reshape(rows, per_row)
        want_side = np.repeat([_BUY, _SELL], self.per_side)
        want_first = np.tile(np.arange(self.per_side) * CHUNK, 2)
        if not ((grid["side"] == want_side).all() and (grid["first"] == want_first).all()
                and (grid["hseq"] == grid["hseq"][:, :1]).all()
                and (grid["instrument"] == grid["instrument"][:, :1]).all()):
            return None
        px = np.stack([grid[f"px_{k}"] for k in range(CHUNK)], axis=2)   # rows, per_row, CHUNK
        qty = np.stack([grid[f"qty_{k}"] for k in range(CHUNK)], axis=2)
        out = np.zeros(rows, dtype=self.dtype)
        last = grid[:, -1]
        for f in ("hseq", "ts", "ts_event", "instrument"):
            out[f] = last[f]
        out["complete"] = 1
        for side, part in (("bid", slice(0, self.per_side)), ("ask", slice(self.per_side, per_row))):
            p = px[:, part].reshape(rows, -1)
            q = qty[:, part].reshape(rows, -1)
            for k in range(self.levels):
                out[f"{side}_px_{k}"] = p[:, k]
                out[f"{side}_qty_{k}"] = q[:, k]
        return out

    def flush_partial(self) -> np.ndarray:
        if not self._pending:
            return np.zeros(0, dtype=self.dtype)
        row = self._row(self._pending, complete=False)
        self._pending = []
        return row

    def _row(self, recs, complete: bool) -> np.ndarray:
        row = np.zeros(1, dtype=self.dtype)
        last = recs[-1]
        row["hseq"], row["ts"] = last["hseq"], last["ts"]
        row["ts_event"], row["instrument"], row["complete"] = last["ts_event"], last["instrument"], complete
        for r in recs:
            if int(r["levels"]) != self.levels:
                self.mismatched += 1
            side = "bid" if int(r["side"]) == _BUY else "ask"
            first = int(r["first"])
            for k in range(min(int(r["count"]), CHUNK)):
                lvl = first + k
                if lvl < self.levels:
                    row[f"{side}_px_{lvl}"] = r[f"px_{k}"]
                    row[f"{side}_qty_{lvl}"] = r[f"qty_{k}"]
        return row


def records_to_rows(recs: np.ndarray, levels: int | None = None) -> np.ndarray:
    """Rows from BOOK_LEVELS records (their own dtype, or SLOT128 slots of any kinds)."""
    if recs.dtype != DTYPES["BOOK_LEVELS"]:
        recs = recs[recs["kind"] == KIND]
        recs = np.ascontiguousarray(recs).view(np.uint8).reshape(len(recs), recs.dtype.itemsize)[:, :128]
        recs = np.ascontiguousarray(recs).view(DTYPES["BOOK_LEVELS"]).reshape(len(recs))
    if levels is None:
        levels = int(recs["levels"][0]) if len(recs) else DEFAULT_LEVELS
    a = Assembler(levels)
    rows = a.add(recs)
    tail = a.flush_partial()
    return np.concatenate([rows, tail]) if len(tail) else rows


def rows(f, levels: int | None = None) -> np.ndarray:
    """The book_top rows of an open session file (h5py.File), or an empty array."""
    if DATASET not in f or f[DATASET].shape[0] == 0:
        return np.zeros(0, dtype=row_dtype(levels or DEFAULT_LEVELS))
    return records_to_rows(f[DATASET][()], levels)
