"""``livestack top --once`` and ``livestack metrics --once`` against a populated block."""

import io

import pytest
from rich.console import Console

from livestack import cli
from livestack.ipc import segment_name
from livestack.schema import DenyReason, OrderState, TradingState
from livestack.telemetry import top
from livestack.telemetry.block import TelemetryBlock


@pytest.fixture
def blk(session):
    b = TelemetryBlock.create(segment_name(session, "telemetry"))
    b.add("events", 5000)
    b.add("fills", 4)
    b.denial(DenyReason.MAX_POSITION)
    b.order_state(OrderState.FILLED)
    b.set_gauge("trading_state", TradingState.HALTED)
    b.set_gauge("kill_latched", 1)
    b.record_many("tick_to_trade", [2500] * 99 + [40_000])
    b.register_instrument(0, 1, "BTCUSDT", 2, 3)
    b.set_position(0, 1500, 1500 * 6_000_000, 12_345_000, -500_000, 6_010_000, 0)
    b.register_ring(0, "records", 1 << 21)
    b.ring_fill(0, 1 << 20)
    b.register_process("harness")
    yield b
    b.close()


def test_one_frame_shows_state_latency_positions_rings_and_processes(blk):
    out = io.StringIO()
    top.run(blk, interval=0.01, once=True, console=Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    for needle in ("HALTED", "KILL LATCHED", "tick_to_trade", "2.5 µs", "40.0 µs", "BTCUSDT", "1.500",
                   "60000.00", "records", "harness", "ok", "denied max_position", "order filled"):
        assert needle in text, needle


def test_render_without_previous_snapshot_has_no_rates(blk):
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(top.render(blk.snapshot()))
    assert "events" in out.getvalue()


def test_cli_top_once_and_metrics_once(blk, capsys):
    assert cli.main(["top", "--telemetry", blk.name, "--once", "--interval", "0.01"]) == 0
    assert "tick_to_trade" in capsys.readouterr().out
    assert cli.main(["metrics", "--telemetry", blk.name, "--once"]) == 0
    assert "livestack_events_total 5000.0" in capsys.readouterr().out


def test_cli_reports_a_missing_block_clearly(session, capsys):
    assert cli.main(["top", "--telemetry", segment_name(session, "telemetry"), "--once"]) == 2
    assert "does not exist" in capsys.readouterr().err
