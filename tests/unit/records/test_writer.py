"""RecordWriter and RingWriter in one process: layout, routing, attributes, restart, holes."""

from __future__ import annotations

import json
import threading

import h5py
import numpy as np
import pytest

import livestack
from livestack.ipc import Ring, segment_name
from livestack.records import h5util, writer as wmod
from livestack.records.ringwriter import RingWriter
from livestack.records.writer import RecordWriter, WriterLocked
from livestack.schema import DTYPES, JOURNAL, SLOT128, RecordFlag, RecordKind, new, spec

ATTRS = {"session": "unit-1", "config": {"writer": {"flush_interval_ms": 100.0}, "x": [1, 2]},
         "cpu": {"harness": 1, "writer": 0},
         "instruments": [{"id": 1, "symbol": "AAA", "price_decimals": 2, "qty_decimals": 3}]}


def slot(name: str, seq: int, journal: bool = False, **fields) -> np.ndarray:
    """One record of kind ``name`` in a 128-byte slot, as the harness puts it on the records ring."""
    r = new(name, 1, instrument=1, seq=seq, ts=1_000 * seq, **fields)
    if journal:
        r["flags"] |= int(RecordFlag.JOURNAL)
    out = np.zeros(1, SLOT128)
    out.view(np.uint8)[:r.dtype.itemsize] = r.view(np.uint8)
    return out


def slots(names, first_seq=1, journal=False) -> np.ndarray:
    return np.concatenate([slot(n, first_seq + i, journal) for i, n in enumerate(names)])


def all_seqs(path):
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        return np.sort(np.concatenate([f[k]["seq"][()] for k in f if k != "journal"]))  # (the index repeats inputs)


def _loud(capfd, caplog) -> str:
    """What the writer said loudly: its log warnings, whether a handler prints them to stderr (a
    configured session) or pytest's log capture holds them (this file run alone)."""
    return capfd.readouterr().err + caplog.text


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "d" / "s.h5")


def test_every_kind_has_a_dataset_with_exactly_the_schema_dtype(path):
    RecordWriter(path, ATTRS).close()
    with h5py.File(path, "r") as f:
        for rec in spec.RECORDS:
            ds = f[rec.name.lower()]
            assert ds.dtype == DTYPES[rec.name]
            assert ds.dtype.itemsize == rec.size
            assert {n: ds.dtype.fields[n][1] for n in ds.dtype.names} == \
                   {f.name: off for f, off in spec.layout(rec)}
            assert ds.maxshape == (None,) and ds.chunks is not None
            assert int(ds.attrs["kind"]) == rec.kind and ds.attrs["record"] == rec.name
        assert f["journal"].dtype == JOURNAL and JOURNAL.itemsize == 18  # the index: seq, row, kind
        assert set(f.keys()) == {r.name.lower() for r in spec.RECORDS} | {"journal", "unknown"}


def test_each_dataset_caches_exactly_one_chunk_so_memory_is_bounded_from_the_first_write(path):
    # A cache larger than one chunk fills at each kind's own rate: a rarely written kind took
    # minutes to fill it, which the soak measured as the writer's memory growing.
    with RecordWriter(path, ATTRS) as w:
        for name, ds in w._ds.items():
            nslots, nbytes, w0 = ds.id.get_access_plist().get_chunk_cache()
            assert nbytes == ds.chunks[0] * ds.dtype.itemsize, name
            assert w0 == 1.0, name
        mdc = w.file.id.get_mdc_config()
        assert mdc.max_size <= 4 << 20


def test_records_are_routed_by_kind_with_their_bytes_intact(path):
    names = [r.name for r in spec.RECORDS]
    s = slots(names)
    s["body"] = np.arange(104, dtype=np.uint8)  # distinct body bytes
    raw = s.view(np.uint8).reshape(len(s), 128)
    with RecordWriter(path, ATTRS) as w:
        assert w.write(s) == len(names)
    with h5py.File(path, "r") as f:
        for i, rec in enumerate(spec.RECORDS):
            ds = f[rec.name.lower()][()]
            assert len(ds) == 1 and int(ds["seq"][0]) == i + 1
            assert ds.view(np.uint8).tobytes() == raw[i, :rec.size].tobytes()
        assert len(f["journal"]) == 0


def test_inputs_are_stored_once_in_their_kind_dataset_and_the_journal_indexes_them_in_order(path):
    s = np.concatenate([slot("EXEC", 1, True), slot("FILL", 2), slot("MD_LEVEL", 3, True, price=7),
                        slot("ORDER_CMD", 4), slot("CONTROL_CMD", 5, True), slot("TIMER", 6, True),
                        slot("MD_LEVEL", 7, True, price=8)])
    with RecordWriter(path, ATTRS) as w:
        w.write(s)
    with h5py.File(path, "r") as f:
        j = f["journal"][()]
        assert j["seq"].tolist() == [1, 3, 5, 6, 7]
        assert j["kind"].tolist() == [RecordKind.EXEC, RecordKind.MD_LEVEL, RecordKind.CONTROL_CMD,
                                      RecordKind.TIMER, RecordKind.MD_LEVEL]
        assert j["row"].tolist() == [0, 0, 0, 0, 1]
        md = f["md_level"][()]
        assert md["price"].tolist() == [7, 8] and (md["flags"] & int(RecordFlag.JOURNAL)).all()
        assert md.view(np.uint8).tobytes() == s[[2, 6]].view(np.uint8).reshape(2, 128)[:, :64].tobytes()
        assert f["exec"][()].view(np.uint8).tobytes() == s[0].tobytes()
        assert f["fill"]["seq"].tolist() == [2] and f["order_cmd"]["seq"].tolist() == [4]
    from livestack.records.replay import consumed_inputs

    (got,) = list(consumed_inputs(path))
    want = s[[0, 2, 4, 5, 6]].copy()
    want["flags"] &= np.uint8(~int(RecordFlag.JOURNAL) & 0xFF)
    assert got.tobytes() == want.tobytes()  # the inputs as the core saw them, in order
    assert [b.tobytes() for b in consumed_inputs(path, start=2, batch=2)] == [want[2:4].tobytes(), want[4:].tobytes()]


def _mixed_stream(seed: int, n: int) -> np.ndarray:
    """``n`` slots of random known kinds (random bodies), about half of them journaled inputs."""
    rng = np.random.default_rng(seed)
    kinds = np.array([r.kind for r in spec.RECORDS], dtype=np.uint16)
    s = np.zeros(n, SLOT128)
    s.view(np.uint8).reshape(n, 128)[:] = rng.integers(0, 256, (n, 128), dtype=np.uint8)
    s["kind"] = kinds[rng.integers(0, len(kinds), n)]
    s["kind"][: n // 2] = RecordKind.MD_LEVEL  # mostly market data, as a live session
    rng.shuffle(s)
    s["flags"] = np.where(rng.random(n) < 0.5, int(RecordFlag.JOURNAL), 0).astype(np.uint8)
    s["seq"] = np.arange(1, n + 1, dtype=np.uint64)
    return s


def _datasets(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][()].tobytes() for k in f}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_one_pass_route_writes_exactly_what_the_general_path_writes(tmp_path, monkeypatch, seed):
    """The Cython one-pass route (writer._route) against the numpy path on the same mixed stream,
    in batches of varying size (a kind's buffer grows when a batch outgrows it)."""
    from livestack.records import _route

    s = _mixed_stream(seed, 30_000)
    cuts = [0, 1, 7, 4096, 4100, 20_000, 30_000]
    routed = []
    real = _route.route
    monkeypatch.setattr(_route, "route", lambda *a: routed.append(real(*a)) or routed[-1])
    for mode in ("routed", "general"):
        if mode == "general":
            monkeypatch.setattr(wmod, "_route", None)
        p = str(tmp_path / f"{mode}.h5")
        with RecordWriter(p, ATTRS, {"quiet": True}) as w:
            for a, b in zip(cuts, cuts[1:]):
                assert w.write(s[a:b]) == (b - a) + int(np.count_nonzero(s["flags"][a:b] & int(RecordFlag.JOURNAL)))
            assert w.next_seq == len(s) + 1 and w.counters["records_in"] == len(s)
    assert len(routed) >= len(cuts) - 1 and all(r >= 0 or r == _route.NEED_BUFFER for r in routed), routed
    a, b = _datasets(str(tmp_path / "routed.h5")), _datasets(str(tmp_path / "general.h5"))
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]]
    with h5py.File(str(tmp_path / "routed.h5"), "r") as f:
        assert len(f["journal"]) == int(np.count_nonzero(s["flags"] & int(RecordFlag.JOURNAL)))


@pytest.mark.parametrize("case", ["hole", "step back", "unknown kind"])
def test_the_one_pass_route_leaves_what_it_does_not_handle_to_the_general_path(path, capfd, caplog, case):
    from livestack.records import _route

    s = _mixed_stream(4, 200)
    if case == "hole":
        s["seq"][150:] += 5
    elif case == "step back":
        s["seq"][150] = 3
    else:
        s["kind"][150] = 999
    with RecordWriter(path, ATTRS, {"quiet": True}) as w:
        raw = s.view(np.uint8).reshape(len(s), 128)
        sizes = wmod._SIZE_OF
        r = _route.route(raw, 1, int(RecordFlag.JOURNAL), sizes, [np.empty(200 * 128, np.uint8)] * 257,
                         np.zeros(257, np.int64), np.zeros(257, np.int64), np.empty(200 * 18, np.uint8),
                         np.zeros(1, np.int64))
        assert r == {"hole": _route.SEQ_BREAK, "step back": _route.SEQ_BREAK, "unknown kind": _route.UNKNOWN_KIND}[case]
        w.write(s)
        assert w.counters["records_in"] == 200
    said = _loud(capfd, caplog)
    assert {"hole": "SEQ HOLE", "step back": "SEQ STEPPED BACK", "unknown kind": "unknown kind"}[case] in said
    with h5py.File(path, "r") as f:
        n = sum(len(f[k]) for k in f if k != "journal")
    assert n == 200  # nothing dropped


def test_restart_indexes_an_input_already_in_its_dataset_but_not_yet_in_the_journal(path):
    s = np.concatenate([slot("MD_LEVEL", i + 1, True, price=i) for i in range(10)])
    w = RecordWriter(path, ATTRS)
    w.write(s)
    w._dsid["journal"].set_extent((6,))  # as if killed after /md_level's flush but before /journal's
    w.size["journal"] = 6
    w.flush()
    w.abandon()
    w = RecordWriter(path, ATTRS, {"quiet": True})
    w.write(s[4:])
    w.close()
    with h5py.File(path, "r") as f:
        assert f["journal"]["seq"].tolist() == list(range(1, 11))
        assert f["journal"]["row"].tolist() == list(range(10))
        assert f["md_level"]["price"].tolist() == list(range(10))


def test_attributes_carry_config_versions_host_cpu_instruments_and_times(path):
    with RecordWriter(path, ATTRS, {"quiet": True}) as w:
        w.write(slots(["FILL"]))
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert json.loads(a["config"]) == ATTRS["config"]
        assert json.loads(a["cpu"]) == ATTRS["cpu"]
        assert json.loads(a["instruments"]) == ATTRS["instruments"]
        assert int(a["schema_version"]) == spec.SCHEMA_VERSION
        assert a["livestack_version"] == livestack.__version__
        assert a["host"] and a["session"] == "unit-1"
        assert 0 < int(a["start_time_ns"]) <= int(a["stop_time_ns"])
        assert a["start_time"] and a["stop_time"]
        assert int(a["writer_starts"]) == 1
        assert json.loads(a["writer_counters"])["records_written"] == 1


def test_instrument_dataclasses_are_stored_as_dicts(path):
    from livestack.config import Instrument

    RecordWriter(path, {"instruments": [Instrument(3, "X", price_decimals=4)]}).close()
    with h5py.File(path, "r") as f:
        (inst,) = json.loads(f.attrs["instruments"])
        assert inst["id"] == 3 and inst["symbol"] == "X" and inst["price_decimals"] == 4


def test_reopen_appends_and_keeps_the_session_start(path):
    with RecordWriter(path, ATTRS) as w:
        w.write(slots(["FILL", "ORDER_STATE"] * 50, 1))
    with h5py.File(path, "r") as f:
        start = int(f.attrs["start_time_ns"])
    with RecordWriter(path, {"session": "other"}, {"quiet": True}) as w:
        assert w.resume_seq == 100
        w.write(slots(["FILL", "ORDER_STATE"] * 50, 101))
    assert all_seqs(path).tolist() == list(range(1, 201))
    with h5py.File(path, "r") as f:
        assert int(f.attrs["start_time_ns"]) == start and f.attrs["session"] == "unit-1"
        assert int(f.attrs["writer_starts"]) == 2


def test_restart_skips_records_already_in_the_file_and_writes_the_rest(path):
    kinds = ["FILL", "ORDER_STATE", "EXEC"]
    w = RecordWriter(path, ATTRS)
    w.write(np.concatenate([slot(kinds[i % 3], i + 1, journal=kinds[i % 3] == "EXEC") for i in range(100)]))
    w.flush()
    w.abandon()  # as if killed after a flush; the ring still holds 61..100 and more
    w = RecordWriter(path, ATTRS, {"quiet": True})
    w.write(np.concatenate([slot(kinds[i % 3], i + 1, journal=kinds[i % 3] == "EXEC") for i in range(60, 150)]))
    # 40 records already in their datasets, and the 13 EXEC inputs among them already in the journal index
    assert w.counters["duplicates_skipped"] == 40 + 13 and w.counters["holes"] == 0
    assert w.counters["seq_regressions"] == 0
    w.close()
    assert all_seqs(path).tolist() == list(range(1, 151))


def test_restart_after_a_partial_flush_fills_each_dataset_from_its_own_last_seq(path):
    # dataset fill reached seq 9 but order_state only seq 4 (a crash between two datasets' flushes)
    w = RecordWriter(path, ATTRS)
    w.write(slots(["FILL", "ORDER_STATE"] * 2, 1))  # 1..4
    w.write(np.concatenate([slot("FILL", s) for s in (5, 7, 9)]))
    w.flush()
    w.abandon()
    w = RecordWriter(path, ATTRS, {"quiet": True})
    w.write(slots(["FILL", "ORDER_STATE"] * 5, 1))  # ring redelivers 1..10
    w.close()
    with h5py.File(path, "r") as f:
        assert f["fill"]["seq"].tolist() == [1, 3, 5, 7, 9]
        assert f["order_state"]["seq"].tolist() == [2, 4, 6, 8, 10]


def test_a_seq_hole_is_reported_loudly_and_nothing_is_dropped(path, capfd, caplog):
    with RecordWriter(path, ATTRS, {"quiet": True}) as w:
        w.write(slots(["FILL"] * 10, 1))
        w.write(slots(["FILL"] * 6, 15))  # 11..14 never arrived
        w.write(np.concatenate([slot("FILL", 21), slot("FILL", 23)]))  # 22 missing inside a batch
        assert w.counters["holes"] == 2 and w.counters["missing_records"] == 5
    err = _loud(capfd, caplog)
    assert "SEQ HOLE" in err and "11..14" in err and "22..22" in err
    assert all_seqs(path).tolist() == list(range(1, 11)) + list(range(15, 22)) + [23]


def test_a_fresh_file_whose_first_record_is_not_seq_1_reports_a_hole(path, capfd, caplog):
    with RecordWriter(path, ATTRS, {"quiet": True}) as w:
        w.write(slots(["FILL"] * 3, 5))
        assert w.counters["holes"] == 1 and w.counters["missing_records"] == 4
    assert "1..4" in _loud(capfd, caplog)


def test_a_seq_stepping_back_outside_a_restart_is_reported(path, capfd, caplog):
    with RecordWriter(path, ATTRS, {"quiet": True}) as w:
        w.write(slots(["FILL"] * 10, 1))
        w.write(slots(["ORDER_STATE"] * 2, 5))
        assert w.counters["seq_regressions"] == 1
    assert "STEPPED BACK" in _loud(capfd, caplog)


def test_unknown_kinds_are_kept_in_their_own_dataset(path, capfd, caplog):
    s = slots(["FILL"] * 3)
    s["kind"][1] = 999
    with RecordWriter(path, ATTRS, {"quiet": True}) as w:
        w.write(s)
        assert w.counters["unknown_kind"] == 1
    with h5py.File(path, "r") as f:
        assert f["unknown"]["seq"].tolist() == [2] and f["fill"]["seq"].tolist() == [1, 3]
    assert "unknown kind" in _loud(capfd, caplog)


def test_a_second_writer_on_the_same_file_is_refused(path):
    w = RecordWriter(path, ATTRS)
    with pytest.raises(WriterLocked):
        RecordWriter(path, ATTRS)
    w.close()
    RecordWriter(path, ATTRS, {"quiet": True}).close()


def test_a_new_file_is_put_in_place_only_once_open_in_swmr_write_mode(path, monkeypatch):
    # a reader that found the file between the rename and the SWMR open got a closed, non-SWMR
    # file: a stale view, and an HDF5 lock that refused the writer (seen in CI)
    import os

    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append((src, dst, h5util.status_flags(src)))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    w = RecordWriter(path, ATTRS)
    try:
        assert seen == [(path + ".tmp", path, 0x05)]  # open for write + SWMR write when it appears
        w.write(slots(["FILL"] * 2))
        w.flush()
    finally:
        w.close()
    assert all_seqs(path).tolist() == [1, 2]


_WRITER_PROC = """
import sys, time
sys.path.insert(0, {root!r})
from tests.unit.records.test_writer import ATTRS, slots
from livestack.records.writer import RecordWriter
w = RecordWriter({path!r}, ATTRS, {{"quiet": True}})
w.write(slots(["FILL"] * 3, first_seq=w.next_seq))
w.flush()
print("ready", w.next_seq, flush=True)
if sys.argv[1] == "hold":
    time.sleep(60)
w.close()
"""


def test_a_reader_holding_the_file_open_never_refuses_a_restarted_writer(path):
    # HDF5's own file lock let any reader (records summary, a dashboard, a test following the
    # journal) refuse a restarted writer, "unable to lock file, errno 11", for as long as it kept
    # the file open; the session traded on with nothing written. The writer's only lock is its flock.
    import os
    import signal
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(livestack.__file__))
    code = _WRITER_PROC.format(root=root, path=path)
    first = subprocess.Popen([sys.executable, "-c", code, "hold"], stdout=subprocess.PIPE, text=True)
    reader = None
    try:
        import select

        assert select.select([first.stdout], [], [], 60)[0], "the first writer did not start within 60 s"
        assert first.stdout.readline().split()[:1] == ["ready"]
        reader = h5py.File(path, "r", libver="latest", swmr=True)  # HDF5's default: file locking on
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = subprocess.run([sys.executable, "-c", code, "close"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr[-2000:]
        assert second.stdout.split()[:2] == ["ready", "7"]  # resumed after seq 3, wrote 4..6
        ds = reader["fill"]
        ds.refresh()
        assert ds["seq"][()].tolist() == [1, 2, 3, 4, 5, 6]  # the reader follows the new writer
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
        if reader is not None:
            reader.close()


def test_lookup3_matches_the_reference_vectors():
    assert h5util.lookup3(b"") == 0xDEADBEEF
    assert h5util.lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert h5util.lookup3(b"Four score and seven years ago") == 0x17770551
    assert h5util.lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def test_status_flags_of_an_unclosed_swmr_file_are_cleared(path):
    w = RecordWriter(path, ATTRS)
    w.write(slots(["FILL"] * 3))
    w.flush()
    assert h5util.status_flags(path) == 0x05  # open for write + SWMR write
    # a non-SWMR open by another process would be refused now; clearing makes the file plain again
    w.file.close()  # releases the HDF5 handle but (unlike a crash) also clears the flags ...
    assert h5util.status_flags(path) == 0
    w._unlock(remove=True)
    raw = bytearray(open(path, "rb").read())  # ... so set them back by hand as a crash leaves them
    length = 12 + 4 * raw[9]
    raw[11] = 0x05
    raw[length:length + 4] = h5util.lookup3(bytes(raw[:length])).to_bytes(4, "little")
    open(path, "wb").write(bytes(raw))
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    assert h5util.clear_status_flags(path) == 0x05
    with h5py.File(path, "r") as f:
        assert f["fill"]["seq"].tolist() == [1, 2, 3]


def test_a_crash_left_end_of_allocation_behind_written_chunks_is_moved_to_the_end_of_file(tmp_path):
    # A SIGKILLed SWMR writer can leave the superblock's EOA short of chunks it already wrote
    # (seen in CI: "addr overflow, addr = 126559841, size = 3627, eoa = 126039649"). Made here by
    # hand: a file whose last chunk lies past a lowered EOA, with the crash's flags set.
    path = str(tmp_path / "eoa.h5")
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("d", data=np.arange(50_000, dtype=np.int64), chunks=(1000,))
    raw = bytearray(open(path, "rb").read())
    size_off = raw[9]
    length = 12 + 4 * size_off
    eoa_at = 12 + 2 * size_off
    assert int.from_bytes(raw[eoa_at:eoa_at + size_off], "little") == len(raw)
    raw[eoa_at:eoa_at + size_off] = (len(raw) - 4000).to_bytes(size_off, "little")
    raw[11] = 0x05
    raw[length:length + 4] = h5util.lookup3(bytes(raw[:length])).to_bytes(4, "little")
    open(path, "wb").write(bytes(raw))
    assert h5util.clear_status_flags(path) == 0x05  # (flags only would leave the EOA short)
    raw = bytearray(open(path, "rb").read())
    assert int.from_bytes(raw[eoa_at:eoa_at + size_off], "little") == len(raw)
    with h5py.File(path, "r") as f:
        assert f["d"][()].tolist() == list(range(50_000))


def test_default_path_is_records_date_session():
    import datetime as dt

    assert wmod.default_path("123-abc", "recs", dt.date(2026, 1, 2)) == "recs/2026-01-02/123-abc.h5"


# ----------------------------------------------------------------------------------------------
# RingWriter over a real (in-process) shared-memory ring


@pytest.fixture
def ring(session):
    r = Ring.create(segment_name(session, "records"), 16, 128)
    yield r
    r.close()


def test_records_are_released_only_after_they_are_flushed(ring, path):
    ring.write_batch(slots(["FILL"] * 10))
    w = RecordWriter(path, ATTRS)
    rw = RingWriter(ring, w, {"flush_interval_ms": 1e6, "high_water": 1.0, "min_write": 1})
    assert rw.step() == 10
    assert ring.head == 0 and rw.pending == 10  # written, not flushed: still owned by the ring
    assert rw.step() == 0 and ring.head == 0
    rw.flush_release()
    assert ring.head == 10 and rw.pending == 0
    w.close()


def test_ring_writer_follows_the_ring_across_wraps(ring, path):
    w = RecordWriter(path, ATTRS)
    rw = RingWriter(ring, w, {"flush_interval_ms": 1e6, "high_water": 1.0, "min_write": 1})
    seq = 1
    for _ in range(7):
        batch = slots(["FILL", "ORDER_STATE", "EXEC"] * 3, seq)[:9]
        batch["flags"][2::3] = int(RecordFlag.JOURNAL)
        assert ring.write_batch(batch) == 9
        seq += 9
        rw.drain()
    assert ring.head == ring.tail == 63
    w.close()
    assert all_seqs(path).tolist() == list(range(1, 64))


def test_lag_reports_unreleased_records_and_the_age_of_the_oldest(ring, path):
    w = RecordWriter(path, ATTRS)
    rw = RingWriter(ring, w, {"flush_interval_ms": 1e6, "high_water": 1.0, "min_write": 1})
    assert rw.lag() == {"lag_records": 0, "lag_ns": 0}
    ring.write_batch(slots(["FILL"] * 4))  # ts = 1000*seq ns since the epoch: very old
    rw.step()
    lag = rw.lag()
    assert lag["lag_records"] == 4 and lag["lag_ns"] > 10**18
    rw.flush_release()
    assert rw.lag()["lag_records"] == 0
    w.close()


def test_run_process_drains_the_ring_and_stamps_the_stop_time(ring, path):
    import signal

    ring.write_batch(slots(["FILL", "DENIAL"] * 4))
    stop = threading.Event()
    stop.set()  # already asked to stop: it must still write everything the ring holds
    old = signal.getsignal(signal.SIGTERM)
    try:
        wmod.run_process(ring.name, path, ATTRS, {"quiet": True}, stop)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert ring.head == 8
    assert all_seqs(path).tolist() == list(range(1, 9))
    with h5py.File(path, "r") as f:
        assert int(f.attrs["stop_time_ns"]) > 0


def _count_fsyncs(monkeypatch):
    calls = []
    real = wmod.os.fsync

    def fsync(fd):
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(wmod.os, "fsync", fsync)
    return calls


def test_flushes_fsync_the_file_at_most_every_fsync_interval_and_at_close(ring, path, monkeypatch):
    # (the periodic fsync runs in a background thread: wait_fsync joins it)
    calls = _count_fsyncs(monkeypatch)
    w = RecordWriter(path, ATTRS)
    rw = RingWriter(ring, w, {"flush_interval_ms": 1e6, "fsync_interval_ms": 1e6, "high_water": 1.0, "min_write": 1})
    rw.next_fsync = 0.0  # due now: the first flush fsyncs, the next ones (interval not over) do not
    for k in range(3):
        ring.write_batch(slots(["FILL"] * 4, first_seq=1 + 4 * k))
        rw.step()
        rw.flush_release()
        w.wait_fsync()
    assert len(calls) == 1 and w.counters["fsyncs"] == 1 and w.counters["flushes"] == 3
    w.close()
    assert len(calls) == 2, "close fsyncs"


def test_a_slow_fsync_does_not_stop_the_writer_draining_the_ring(ring, path, monkeypatch):
    gate = threading.Event()
    calls = []

    def slow_fsync(fd):
        calls.append(fd)
        gate.wait(10)

    monkeypatch.setattr(wmod.os, "fsync", slow_fsync)
    w = RecordWriter(path, ATTRS)
    rw = RingWriter(ring, w, {"flush_interval_ms": 1e6, "fsync_interval_ms": 1e-3, "high_water": 1.0, "min_write": 1})
    rw.next_fsync = 0.0
    try:
        for k in range(3):
            ring.write_batch(slots(["FILL"] * 4, first_seq=1 + 4 * k))
            rw.step()
            rw.flush_release()
            assert ring.size() == 0, "flushed records are released while the fsync runs"
        assert len(calls) == 1, "one fsync at a time"
    finally:
        gate.set()
    w.close()
    assert len(calls) == 2 and all_seqs(path).tolist() == list(range(1, 13))


def test_fsync_interval_0_never_fsyncs_a_flush(ring, path, monkeypatch):
    calls = _count_fsyncs(monkeypatch)
    w = RecordWriter(path, ATTRS)
    rw = RingWriter(ring, w, {"flush_interval_ms": 1e6, "fsync_interval_ms": 0, "high_water": 1.0, "min_write": 1})
    rw.next_fsync = 0.0
    ring.write_batch(slots(["FILL"] * 4))
    rw.step()
    rw.flush_release()
    w.wait_fsync()
    assert calls == [] and w.counters["fsyncs"] == 0
    w.close()


def test_a_trickle_waits_in_the_ring_until_a_flush_is_due(ring, path):
    w = RecordWriter(path, ATTRS)
    rw = RingWriter(ring, w, {"flush_interval_ms": 1e6, "min_write": 8, "high_water": 1.0})
    rw.next_flush = float("inf")
    ring.write_batch(slots(["FILL"] * 3))
    assert rw.step() == 0 and rw.pending == 0 and ring.head == 0  # left in the ring: safe there
    ring.write_batch(slots(["FILL"] * 5, 4))
    assert rw.step() == 8 and rw.pending == 8
    ring.write_batch(slots(["FILL"] * 2, 9))
    rw.next_flush = 0.0  # the flush interval has passed: take the trickle, flush, release
    assert rw.step() == 2 and ring.head == 10 and rw.pending == 0
    w.close()
    assert all_seqs(path).tolist() == list(range(1, 11))
