"""Producer and consumer processes for the ring stress tests (importable by spawned children).

The producer writes record ``seq = position + 1`` with a checksum over the payload; the consumer
checks every record it reads is exactly the one that belongs at the ring position it read it
from. That single check proves no loss, no duplicate, no reordering and no torn record, including
across a consumer restart (the position comes from the segment)."""

from __future__ import annotations

import os

import numpy as np

from livestack.ipc import Backoff, Ring, pyring
from livestack.ipc import shm
from livestack.schema import new

MIX = np.uint64(0x9E3779B97F4A7C15)

# status block layout (int64): errors, first bad position, verified position, instances, pid
ERRORS, FIRST_BAD, VERIFIED, INSTANCES, PID = range(5)


def checksum(seq, price, qty):
    with np.errstate(over="ignore"):
        return (seq.astype(np.uint64) * MIX) ^ price.astype(np.uint64) ^ (qty.astype(np.uint64) << np.uint64(17))


def _impl(name):
    return {"compiled": Ring, "reference": pyring.PyRing}[name]


def produce(impl: str, ring_name: str, total: int, seed: int, max_batch: int) -> None:
    ring = _impl(impl).attach(ring_name)
    rng = np.random.default_rng(seed)
    buf = new("MD_LEVEL", max_batch)
    backoff = Backoff("backoff", spins=10, yields=5, min_sleep_ns=2000, max_sleep_ns=200_000)
    seq = 1
    use_claim = False
    while seq <= total:
        n = int(min(rng.integers(1, max_batch + 1), total - seq + 1))
        seqs = np.arange(seq, seq + n, dtype=np.uint64)
        prices = rng.integers(1, 10**12, n)
        qtys = rng.integers(0, 10**9, n)
        if use_claim:
            # claim/fill/commit in place: may get fewer slots than asked (wrap, full)
            done = 0
            while done < n:
                v = ring.claim(n - done)
                k = len(v)
                if k == 0:
                    backoff.idle()
                    continue
                backoff.reset()
                sl = slice(done, done + k)
                v["seq"] = seqs[sl]
                v["price"] = prices[sl]
                v["qty"] = qtys[sl]
                v["update_id"] = checksum(seqs[sl], prices[sl], qtys[sl]).view(np.int64)
                ring.commit(k)
                done += k
        else:
            b = buf[:n]
            b["seq"] = seqs
            b["price"] = prices
            b["qty"] = qtys
            b["update_id"] = checksum(seqs, prices, qtys).view(np.int64)
            done = 0
            while done < n:
                k = ring.write_batch(b[done:])
                if k == 0:
                    backoff.idle()
                    continue
                backoff.reset()
                done += k
        seq += n
        use_claim = not use_claim
    ring.close()


def consume(impl: str, ring_name: str, status_name: str, total: int, seed: int, max_batch: int) -> None:
    ring = _impl(impl).attach(ring_name)
    _, mm = shm.attach_segment(status_name)
    status = np.frombuffer(mm, dtype=np.int64, count=8)
    status[INSTANCES] += 1
    status[PID] = os.getpid()
    rng = np.random.default_rng(seed + int(status[INSTANCES]))
    out = new("MD_LEVEL", max_batch)
    backoff = Backoff("backoff", spins=10, yields=5, min_sleep_ns=2000, max_sleep_ns=200_000)
    use_view = False
    while True:
        pos = ring.head
        if pos >= total:
            break
        want = int(rng.integers(1, max_batch + 1))
        if use_view:
            v = ring.view(want)
            n = len(v)
        else:
            n = ring.read(out, max_records=want)
            v = out[:n]
        if n == 0:
            backoff.idle()
            continue
        backoff.reset()
        expected = np.arange(pos + 1, pos + 1 + n, dtype=np.uint64)
        ok_seq = v["seq"] == expected
        ok_sum = v["update_id"].view(np.uint64) == checksum(v["seq"], v["price"], v["qty"])
        if not (ok_seq.all() and ok_sum.all()):
            bad = int(np.flatnonzero(~(ok_seq & ok_sum))[0])
            if status[ERRORS] == 0:
                status[FIRST_BAD] = pos + bad
            status[ERRORS] += 1
        status[VERIFIED] = pos + n
        if use_view:
            ring.release(n)
        use_view = not use_view
    ring.close()
