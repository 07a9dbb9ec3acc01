"""Execution Record Writer: the records ring → one HDF5 file per session, and its readers.

* ``livestack.records.writer``: the writer process (``run_process``) and ``RecordWriter``.
* ``livestack.records.open_session(path)``: pandas DataFrames per record kind, decoded.
* ``livestack records summary FILE``: counts, fills, PnL, denials, anomalies, session times.
* ``livestack.records.replay``: ``livestack replay FILE [--verify]`` through the Core Runtime;
  ``consumed_inputs(file)``: the inputs a session consumed, in order (any layout).
* ``livestack records export FILE --parquet DIR`` (``export``), ``livestack records report FILE [--html OUT]`` (``report``).
"""

from livestack.records.reader import Session, open_session  # noqa: F401
