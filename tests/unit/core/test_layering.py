"""The core does no I/O: nothing under livestack/core imports networking, storage, async or logging."""

from __future__ import annotations

import re

from tests.conftest import ROOT

FORBIDDEN = ("zmq", "h5py", "asyncio", "socket", "logging", "time", "random", "datetime")


def test_core_sources_import_nothing_that_does_io_or_reads_a_clock():
    for path in sorted((ROOT / "livestack" / "core").glob("*.py*")):
        if path.suffix not in (".py", ".pyx", ".pxd"):
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"\s*(?:from|import|cimport)\s+([\w.]+)", line)
            if m:
                top = m.group(1).split(".")[0]
                assert top not in FORBIDDEN, f"{path.name}: {line.strip()}"


def test_every_pyx_has_a_pxd():
    for pkg in ("core", "strategies", "backtest"):
        for pyx in (ROOT / "livestack" / pkg).glob("*.pyx"):
            assert pyx.with_suffix(".pxd").exists(), pyx
