"""JetStream publishing pieces that need no server: the [writer.nats] Struct, the spool outbox and
the split of a batch into per-kind messages."""

import numpy as np
import pytest

from livestack.node import config
from livestack.records import jetstream
from livestack.schema import SLOT128


def test_options_are_typed_and_unknown_keys_are_errors():
    o = jetstream.options({"servers": ["nats://127.0.0.1:4222"], "replicas": 3})
    assert o.replicas == 3 and o.stream == "LIVESTACK_RECORDS"
    with pytest.raises(ValueError, match="writer.nats"):
        jetstream.options({"server": "x"})
    with pytest.raises(ValueError, match="writer.nats"):
        jetstream.options({"replicas": "three"})


def test_config_validates_writer_nats_with_the_struct():
    cfg = config.validate({"writer": {"nats": {"servers": ["nats://h:4222"]}}})
    assert cfg["writer"]["nats"]["servers"] == ["nats://h:4222"]
    with pytest.raises(config.ConfigError, match="nats"):
        config.validate({"writer": {"nats": {"bogus": 1}}})


def _slots(n, first=1):
    s = np.zeros(n, dtype=SLOT128)
    s["seq"] = np.arange(first, first + n)
    s["kind"] = np.where(s["seq"] % 2 == 0, 5, 1)
    return s


def test_spool_appends_reads_from_an_offset_and_keeps_the_acked_cursor(tmp_path):
    sp = jetstream.Spool(str(tmp_path / "s.nats-spool"))
    sp.append(_slots(10))
    sp.append(_slots(5, 11))
    assert sp.size() == 15 * 128
    got = sp.read(3 * 128, 100)
    assert got["seq"].tolist() == list(range(4, 16))
    assert sp.acked() == 0
    sp.set_acked(7 * 128)
    assert jetstream.Spool(str(tmp_path / "s.nats-spool")).acked() == 7 * 128
    sp.close(remove=True)
    assert not (tmp_path / "s.nats-spool").exists() and not (tmp_path / "s.nats-cursor").exists()


def test_a_batch_splits_into_per_kind_messages_of_bounded_size_keeping_order():
    parts = jetstream.split_by_kind(_slots(10), 3)
    assert [(k, r["seq"].tolist()) for k, r in parts] == [
        (1, [1, 3, 5]), (1, [7, 9]), (5, [2, 4, 6]), (5, [8, 10])]
    assert jetstream.subject("livestack.rec", "1-ab", jetstream.kind_name(5)) == "livestack.rec.1-ab.exec"
