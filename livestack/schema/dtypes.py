"""numpy structured dtypes and enum constants, built from ``livestack.schema.spec`` at import time.

Nothing here is hand-kept: add or change a record in ``spec.py`` and every view follows.
"""

from __future__ import annotations

import enum

import numpy as np

from livestack.schema import spec

_NP = {k: v[1] for k, v in spec.TYPES.items()}


def _dtype(rec: spec.Record) -> np.dtype:
    names, formats, offsets = [], [], []
    for f, off in spec.layout(rec):
        names.append(f.name)
        formats.append(_NP[f.type] if f.count == 1 else (np.uint8, (f.count,)))
        offsets.append(off)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": rec.size})


#: record name -> dtype, e.g. DTYPES["MD_LEVEL"]
DTYPES: dict[str, np.dtype] = {r.name: _dtype(r) for r in spec.RECORDS}
#: record kind -> dtype
DTYPE_BY_KIND: dict[int, np.dtype] = {r.kind: DTYPES[r.name] for r in spec.RECORDS}

#: The common header as a dtype of its own (24 bytes); view any slot array through it.
HEADER = np.dtype({
    "names": [f.name for f in spec.HEADER],
    "formats": [_NP[f.type] for f in spec.HEADER],
})
#: Slot views: raw fixed-size slots as they sit in a ring, header fields first.
SLOT64 = np.dtype({"names": [f.name for f in spec.HEADER] + ["body"],
                   "formats": [_NP[f.type] for f in spec.HEADER] + [(np.uint8, (64 - spec.HEADER_SIZE,))]})
SLOT128 = np.dtype({"names": [f.name for f in spec.HEADER] + ["body"],
                    "formats": [_NP[f.type] for f in spec.HEADER] + [(np.uint8, (128 - spec.HEADER_SIZE,))]})
#: The journal as stored in HDF5 (schema 4): the ordered index of consumed inputs (spec.JOURNAL_INDEX),
#: packed: each entry names the kind and the row of the input in that kind's dataset.
JOURNAL = np.dtype({"names": [f.name for f in spec.JOURNAL_INDEX], "formats": [_NP[f.type] for f in spec.JOURNAL_INDEX]})
#: The journal of schema <= 3 files: a 128-byte copy of every consumed input (still readable).
JOURNAL_V3 = SLOT128


def slot_dtype(size: int) -> np.dtype:
    return {64: SLOT64, 128: SLOT128}[size]


def _make_enum(e: spec.Enum) -> type[enum.IntEnum]:
    return enum.IntEnum(e.name, {name: value for name, value, _ in e.members})


RecordKind = _make_enum(spec.ENUMS_BY_NAME["RecordKind"])
RecordFlag = _make_enum(spec.ENUMS_BY_NAME["RecordFlag"])
Side = _make_enum(spec.ENUMS_BY_NAME["Side"])
FeedStatus = _make_enum(spec.ENUMS_BY_NAME["FeedStatus"])
ExecType = _make_enum(spec.ENUMS_BY_NAME["ExecType"])
OrderCmdType = _make_enum(spec.ENUMS_BY_NAME["OrderCmdType"])
OrdType = _make_enum(spec.ENUMS_BY_NAME["OrdType"])
TimeInForce = _make_enum(spec.ENUMS_BY_NAME["TimeInForce"])
OrderState = _make_enum(spec.ENUMS_BY_NAME["OrderState"])
TradingState = _make_enum(spec.ENUMS_BY_NAME["TradingState"])
DenyReason = _make_enum(spec.ENUMS_BY_NAME["DenyReason"])
ControlCmdType = _make_enum(spec.ENUMS_BY_NAME["ControlCmdType"])
ControlStatus = _make_enum(spec.ENUMS_BY_NAME["ControlStatus"])
ControlError = _make_enum(spec.ENUMS_BY_NAME["ControlError"])
RiskLimit = _make_enum(spec.ENUMS_BY_NAME["RiskLimit"])
Anomaly = _make_enum(spec.ENUMS_BY_NAME["Anomaly"])
ErrorAction = _make_enum(spec.ENUMS_BY_NAME["ErrorAction"])

ENUMS = {e.name: globals()[e.name] for e in spec.ENUMS}


def new(name: str, n: int = 1, **fields) -> np.ndarray:
    """A zeroed array of ``n`` records of kind ``name`` with the header's kind/version filled in.

    Keyword arguments set fields on every element, e.g. ``new("MD_LEVEL", 1, price=100)``.
    """
    rec = spec.RECORDS_BY_NAME[name]
    arr = np.zeros(n, dtype=DTYPES[name])
    arr["kind"] = rec.kind
    arr["version"] = rec.version
    for k, v in fields.items():
        arr[k] = v
    return arr
