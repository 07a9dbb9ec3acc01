"""The FIX inbound fuzzer as a test: a short seeded run (the long one is bench/fuzz_fix.py).

Every case is a broken or valid ExecutionReport between valid ones (livestack.testing.fix_fuzz):
no valid message may be lost, every planted fault must be refused with its FIX reason and tag,
every valid report accepted with the ExecID's exact identity, and nothing may raise.
"""

from __future__ import annotations

import pytest

from livestack.testing import fix_fuzz


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_fuzz_run_loses_nothing_and_judges_every_case_right(seed):
    counts, failures = fix_fuzz.run(4000, seed=seed)
    assert failures == []
    assert counts["lost"] == counts["wrong_verdict"] == counts["crashes"] == 0
    # the run exercised what it claims to
    assert counts["cases"] == 4000 and counts["recovered"] > 500
    assert counts["cases.semantic"] > 500 and counts["cases.valid"] > 200
    assert counts["framer.bad_length"] > 0 and counts["framer.bad_checksum"] > 0 and counts["framer.garbage"] > 0
    assert counts["session.violation"] > 0
    for name in ("required_tag_missing", "tag_without_value", "value_incorrect", "incorrect_data_format",
                 "tag_appears_more_than_once", "unknown_security", "conditionally_required_field_missing"):
        assert counts["decoder.rejected." + name] > 0, name
