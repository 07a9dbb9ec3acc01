"""The records-disk alert is on /metrics (issue 12.6): disk state, free bytes, records lost."""

from prometheus_client.parser import text_string_to_metric_families

from livestack.ipc import segment_name
from livestack.schema import Anomaly
from livestack.telemetry.block import TelemetryBlock
from tests.unit.telemetry.test_exporter import scrape


def test_disk_full_state_and_lost_records_are_exported(session):
    b = TelemetryBlock.create(segment_name(session, "telemetry"))
    try:
        b.set_gauge("writer_disk_state", 3)
        b.set_gauge("writer_free_bytes", 4 << 20)
        b.set_gauge("records_lost_disk_full", 1234)
        b.set_gauge("rseq", 99)
        b.anomaly(Anomaly.DISK_FULL)
        s = {(x.name, tuple(sorted(x.labels.items()))): x.value
             for f in text_string_to_metric_families(scrape(b)) for x in f.samples}
        assert s[("livestack_writer_disk_state", ())] == 3
        assert s[("livestack_writer_free_bytes", ())] == 4 << 20
        assert s[("livestack_records_lost_disk_full", ())] == 1234
        assert s[("livestack_record_sequence", ())] == 99
        assert s[("livestack_anomalies_total", (("code", "DISK_FULL"),))] == 1
    finally:
        b.close()
