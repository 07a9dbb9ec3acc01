"""Demo (not the product): a producer process streams MD_LEVEL records through a shared-memory
ring to this process, which verifies sequence numbers and prints the rate (``livestack ring-demo``).

It stands in for a feed and the harness on a real ring (the same ``Ring`` class, roles included:
the producer attaches as producer, this process consumes); the records are synthetic."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np

from livestack.ipc import Backoff, Ring, new_session_id, remove_session, segment_name
from livestack.schema import DTYPES, RecordKind, new


def _produce(name: str, seconds: float) -> None:
    ring = Ring.attach(name, timeout=5.0, role="producer")
    batch = new("MD_LEVEL", 256)
    seq = 1
    backoff = Backoff("backoff")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch["seq"] = np.arange(seq, seq + len(batch), dtype=np.uint64)
        batch["price"] = batch["seq"].astype(np.int64)
        done = 0
        while done < len(batch):
            k = ring.write_batch(batch[done:])
            done += k
            if k == 0:
                backoff.idle()
            else:
                backoff.reset()
        seq += len(batch)
    ring.close()


def main(seconds: float = 3.0) -> int:
    session = new_session_id()
    name = segment_name(session, "md.demo")
    ring = Ring.create(name, 1 << 16, 64, RecordKind.MD_LEVEL, role="consumer")
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_produce, args=(name, seconds), daemon=True)
    proc.start()
    out = np.zeros(4096, dtype=DTYPES["MD_LEVEL"])
    expected, total, start = 1, 0, time.monotonic()
    backoff = Backoff("backoff")
    try:
        while proc.is_alive() or ring.size():
            n = ring.read(out)
            if n == 0:
                backoff.idle()
                if time.monotonic() - start > seconds + 30:
                    raise TimeoutError("demo producer did not finish")
                continue
            backoff.reset()
            seqs = out["seq"][:n]
            if seqs[0] != expected or np.any(np.diff(seqs) != 1):
                raise AssertionError(f"sequence broken at {expected}")
            expected += n
            total += n
        elapsed = time.monotonic() - start
        print(f"ring demo: {total:,} records through shm ring {name} in {elapsed:.2f}s "
              f"({total / elapsed / 1e6:.1f}M records/s), sequence intact")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
        ring.close()
        remove_session(session)
    return 0
