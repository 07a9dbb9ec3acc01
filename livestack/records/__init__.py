"""Execution Record Writer: the records ring → one HDF5 file per session, and its readers.

* ``livestack.records.writer``: the writer process (``run_process``) and ``RecordWriter``.
* ``livestack.records.open_session(path)``: pandas DataFrames per record kind, decoded.
* ``livestack records summary FILE``: counts, fills, PnL, denials, anomalies, session times.
* ``livestack.records.replay``: ``livestack replay FILE [--verify]`` through the Core Runtime.
"""

from livestack.records.reader import Session, open_session  # noqa: F401
