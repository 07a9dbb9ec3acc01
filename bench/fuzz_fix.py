"""FIX inbound fuzz run: >= 100k seeded cases through framing, parsing and ExecutionReport decoding.

    stream per case:  before + M + after1 + after2   (valid ERs around M), fed in random read sizes
                      --Framer--> frames --parse_message / violation()--> --ExecDecoder--> verdict
    M:  valid ER | well-framed ER with one planted fault | ER with broken bytes

Then the JSE FIXT.1.1 receive log (13,888 real messages) through the same path, whole and with every
7th message broken: every unbroken message must come out, none may be refused as malformed.

    python bench/fuzz_fix.py [--cases 200000] [--seed 1]

Prints the counts per parser (cases, accepted, rejected by reason, framer drops by status,
recovered frames, lost, wrong verdicts, crashes -- the last three must be 0) and writes
bench/results/fuzz_fix.json. Exit status 1 when any of those is not 0.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.testing import fix_fuzz  # noqa: E402
from livestack.venues.fix import codec  # noqa: E402

JSE = "fix/jse-fixt11-marketdata.fix"


def _data_dir() -> pathlib.Path | None:
    env = os.environ.get("LIVESTACK_DATA")
    root = pathlib.Path(__file__).resolve().parents[1]
    for cand in ([pathlib.Path(env)] if env else []) + [root.parent / "shared" / "data", pathlib.Path("/work/shared/data")]:
        if (cand / JSE).exists():
            return cand
    return None


def jse(seed: int) -> dict:
    d = _data_dir()
    if d is None:
        return {"skipped": "data not found (set LIVESTACK_DATA)"}
    data = (d / JSE).read_bytes()
    fr = codec.Framer()
    fr.feed(data)
    msgs = [m for s, m in fr if s == codec.OK]
    res = {"bytes": len(data), "framed": len(msgs), "framer_drops": sum(v for k, v in fr.counters.items() if k != "ok"),
           "left_buffered": fr.buffered()}
    res["violations"] = sum(codec.parse_message(m).violation() is not None for m in msgs)
    # every 7th message broken (a random byte of it changed), read in random sizes
    rng = random.Random(seed)
    stream, keep = [], []
    for i, m in enumerate(msgs):
        if i % 7 == 3:
            b = bytearray(m)
            k = rng.randrange(len(b))
            b[k] = (b[k] + rng.randrange(1, 256)) % 256
            stream.append(bytes(b))
        else:
            stream.append(m)
            keep.append(m)
    blob = b"".join(stream)
    fr = codec.Framer()
    out, pos = [], 0
    while pos < len(blob):
        k = rng.choice((1, 7, 64, 1500, 65536))
        fr.feed(blob[pos:pos + k])
        pos += k
        out += [m for s, m in fr if s == codec.OK]
    kept = set(keep)
    res["broken_every_7th"] = {"intact_sent": len(keep), "intact_received": sum(m in kept for m in out),
                              "lost": len(kept - set(out))}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t = time.perf_counter()
    counts, failures = fix_fuzz.run(a.cases, a.seed)
    dt = time.perf_counter() - t
    c = dict(sorted(counts.items()))
    per_parser = {
        "framer": {k.split(".", 1)[1]: v for k, v in c.items() if k.startswith("framer.")},
        "parse_message": {"garbled": c.get("parse.garbled", 0), "violations": c.get("session.violation", 0)},
        "exec_decoder": {"accepted": c.get("decoder.accepted", 0),
                         "rejected": {k.split(".", 2)[2]: v for k, v in c.items() if k.startswith("decoder.rejected.")}},
    }
    res = {"what": "FIX inbound fuzz: Framer, parse_message/violation, ExecDecoder", "seed": a.seed,
           "cases": c["cases"], "cases_by_kind": {k.split(".", 1)[1]: v for k, v in c.items() if k.startswith("cases.")},
           "byte_mutations": {k.split(".", 1)[1]: v for k, v in c.items() if k.startswith("bytes.")},
           "per_parser": per_parser, "recovered": c["recovered"], "lost": c["lost"],
           "wrong_verdict": c["wrong_verdict"], "crashes": c["crashes"], "failures": failures,
           "seconds": round(dt, 1), "jse": jse(a.seed)}
    print(f"FIX fuzz: {res['cases']:,} cases (seed {a.seed}) in {dt:.1f} s: {res['cases_by_kind']}")
    print(f"  byte mutations   {res['byte_mutations']}")
    print(f"  framer           {per_parser['framer']}")
    print(f"  parse_message    {per_parser['parse_message']}")
    print(f"  exec_decoder     accepted {per_parser['exec_decoder']['accepted']:,}, rejected "
          f"{per_parser['exec_decoder']['rejected']}")
    print(f"  recovered frames {res['recovered']:,} (valid message after a broken one kept)")
    print(f"  lost {res['lost']}, wrong verdicts {res['wrong_verdict']}, crashes {res['crashes']}")
    print(f"  JSE FIXT.1.1 log {res['jse']}")
    for f in failures:
        print("  FAIL", f[:300])
    common.write_result("fuzz_fix", res)
    bad = res["lost"] or res["wrong_verdict"] or res["crashes"]
    j = res["jse"]
    if "framed" in j:
        bad = bad or j["framed"] != 13_888 or j["violations"] or j["broken_every_7th"]["lost"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
