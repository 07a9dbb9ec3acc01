"""Request decoding, validation, endpoint policy and the record layouts the control process packs."""

import pytest

from livestack.control import protocol as P
from livestack.control import server as S
from livestack.schema import DTYPES, ControlCmdType, RiskLimit


def test_struct_layouts_match_the_schema_dtypes():
    for st, name, fields in ((S._CMD, "CONTROL_CMD", None), (S._REPLY, "CONTROL_REPLY", S._REPLY_FIELDS)):
        dt = DTYPES[name]
        assert st.size == dt.itemsize
    import numpy as np

    raw = S._CMD.pack(8, 1, 0, 7, 3, 99, 12345, 4, -5, 6, int(ControlCmdType.SET_LIMIT))
    rec = np.frombuffer(raw, dtype=DTYPES["CONTROL_CMD"])[0]
    assert (rec["kind"], rec["instrument"], rec["seq"], rec["ts"], rec["request_id"], rec["arg0"], rec["arg1"],
            rec["arg2"], rec["cmd"]) == (8, 7, 3, 99, 12345, 4, -5, 6, ControlCmdType.SET_LIMIT)
    rep = np.zeros(1, dtype=DTYPES["CONTROL_REPLY"])
    rep["request_id"], rep["hseq"], rep["value0"], rep["value1"], rep["status"], rep["error"] = 5, 6, -7, 8, 1, 3
    d = S._reply_dict(rep.tobytes(), 0)
    assert (d["request_id"], d["hseq"], d["value0"], d["value1"], d["status"], d["error"]) == (5, 6, -7, 8, 1, 3)


def test_server_record_layouts_derive_from_the_schema_for_every_record():
    """Issue 11: control/server.py restated CONTROL_CMD/REPLY as struct format strings. Now
    ``struct_of`` derives them from spec; checked against the numpy dtype of every record."""
    import inspect

    import numpy as np

    from livestack.schema import spec

    for rec in spec.RECORDS:
        st, names = S.struct_of(rec)
        dt = DTYPES[rec.name]
        assert st.size == dt.itemsize == rec.size, rec.name
        assert names == tuple(f.name for f in spec.record_fields(rec) if not f.name.startswith("_"))
        arr = np.zeros(1, dtype=dt)
        for k, name in enumerate(names):  # distinct, in-range values for every field
            arr[name] = (k * 37 + 1) % 127 if arr[name].dtype.kind in "iu" else bytes([k + 1]) * arr[name].dtype.itemsize
        # a byte-array field (ANOMALY_TEXT.text) unpacks as bytes
        assert st.unpack(arr.tobytes()) == tuple(arr[0][n].tobytes() if arr[0][n].ndim else arr[0][n].item()
                                                 for n in names), rec.name
    for st, names, name in ((S._CMD, S._CMD_FIELDS, "CONTROL_CMD"), (S._REPLY, S._REPLY_FIELDS, "CONTROL_REPLY")):
        derived = S.struct_of(spec.RECORDS_BY_NAME[name])
        assert (st.format, names) == (derived[0].format, derived[1])
    src = inspect.getsource(S)
    assert 'struct.Struct("<' not in src and "_pad" not in src  # no layout restated by hand


@pytest.mark.parametrize("raw,code", [
    (b"nope", "malformed"), (b"42", "malformed"), (b'{"cmd":"kill"}', "malformed"),
    (b'{"id":true,"cmd":"kill"}', "malformed"), (b'{"id":1}', "malformed"),
    (b'{"id":1,"cmd":"kill","extra":1}', "malformed"), (b'{"id":1,"cmd":7}', "malformed"),
    (b'{"id":1,"cmd":"fly"}', "unknown_command"), (b'{"id":1,"cmd":"kill","args":{"x":1}}', "bad_arguments"),
    (b'{"id":1,"cmd":"kill","args":"x"}', "bad_arguments"),
    # issue 12: these were executed ("args or {}", no type checks)
    (b'{"id":1,"cmd":"kill","args":[]}', "bad_arguments"), (b'{"id":1,"cmd":"kill","args":0}', "bad_arguments"),
    (b'{"id":1,"cmd":"kill","args":""}', "bad_arguments"), (b'{"id":1,"cmd":"kill","args":null}', "bad_arguments"),
    (b'{"id":1,"cmd":"kill","args":false}', "bad_arguments"),
    (b'{"id":1,"cmd":"cancel-all","args":[]}', "bad_arguments"),
    (b'{"id":1,"cmd":"cancel-all","args":{"instrument":1.5}}', "bad_arguments"),
    (b'{"id":1,"cmd":"cancel-all","args":{"instrument":[1]}}', "bad_arguments"),
    (b'{"id":1,"cmd":"cancel-all","args":{"instrument":true}}', "bad_arguments"),
    (b'{"id":1,"cmd":"set-limit","args":{"limit":"max_position","value":1.5}}', "bad_arguments"),
    (b'{"id":1,"cmd":"set-limit","args":{"limit":"max_position","value":true}}', "bad_arguments"),
    (b'{"id":1,"cmd":"set-limit","args":{"limit":"max_position"}}', "bad_arguments"),
    (b'{"id":1,"cmd":"set-limit","args":{"limit":null,"value":1}}', "bad_arguments"),
    (b'{"id":1,"cmd":"config","args":{"set":{}}}', "bad_arguments"),
    (b'{"id":1,"cmd":"config","args":{"set":[["risk.max_position",1]]}}', "bad_arguments"),
    (b'{"id":1,"cmd":"config","args":{"set":{"risk.max_position":{"v":1}}}}', "bad_arguments"),
    (b'{"id":1,"cmd":"config","args":{"set":{"risk.max_position":1},"other":1}}', "bad_arguments"),
    (b'{"id":1,"cmd":"orders","args":{"instrument":{}}}', "bad_arguments"),
])
def test_bad_requests_are_rejected_with_a_code(raw, code):
    with pytest.raises(P.RequestError) as e:
        P.decode_request(raw)
    assert e.value.code == code and e.value.message


def test_requests_decode_with_aliases_and_echo_the_id():
    assert P.decode_request(b'{"id":"a","cmd":"KILL_RESET"}') == ("a", "kill-reset", {})
    assert P.decode_request(b'{"id":3,"cmd":"trading_enable"}')[1] == "enable"
    assert P.decode_request(b'{"id":3,"cmd":"cancel-all","args":{"instrument":"BTC"}}')[2] == {"instrument": "BTC"}
    assert P.decode_request(b'{"id":3,"cmd":"cancel-all","args":{"instrument":null}}')[2] == {}
    assert P.decode_request(b'{"id":3,"cmd":"kill","args":{}}')[2] == {}
    assert P.decode_request(b'{"id":3,"cmd":"config","args":{"set":{"strategy.x":true,"risk.a":"1.5"}}}')[2] == \
        {"set": {"strategy.x": True, "risk.a": "1.5"}}


@pytest.mark.parametrize("ep,local", [
    ("ipc:///tmp/x.sock", True), ("tcp://127.0.0.1:5555", True), ("tcp://localhost:1", True),
    ("tcp://[::1]:5", True), ("tcp://127.1.2.3:5", True), ("tcp://0.0.0.0:5", False), ("tcp://*:5", False),
    ("tcp://eth0:5", False), ("tcp://10.0.0.1:5", False), ("tcp://[::]:5", False), ("pgm://x", False),
])
def test_only_ipc_and_loopback_count_as_local(ep, local):
    assert P.is_local_endpoint(ep) is local


def test_every_tcp_bind_needs_curve_loopback_included():
    for ep in ("tcp://0.0.0.0:5555", "tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:5"):
        with pytest.raises(ValueError, match="without CURVE keys"):
            P.check_bind(ep, curve=False)
        P.check_bind(ep, curve=True)
    P.check_bind("ipc:///tmp/x/control.sock", curve=False)  # 0600 socket file: the uid is the boundary
    with pytest.raises(ValueError, match="expected ipc"):
        P.check_bind("udp://1.2.3.4:5", curve=True)


INSTS = P.Instruments([P.InstrumentInfo(1, "BTCUSDT", 2, 3), P.InstrumentInfo(2, "ETHUSDT", 2, 4)])


def test_limit_values_convert_decimals_with_the_instrument_scale():
    assert P.limit_value(RiskLimit.MAX_POSITION, "1.5", INSTS.resolve("btcusdt")) == 1500
    assert P.limit_value(RiskLimit.MAX_LOSS, "100.25", INSTS.resolve(2)) == 10025
    assert P.limit_value(RiskLimit.MAX_OPEN_ORDERS, "4", None) == 4
    for bad in ("1.5", 1.5, -1, "x"):
        with pytest.raises(P.RequestError):
            P.limit_value(RiskLimit.MAX_OPEN_ORDERS, bad, None)
    with pytest.raises(P.RequestError, match="needs a known instrument"):
        P.limit_value(RiskLimit.MAX_POSITION, "1.5", None)
    with pytest.raises(P.RequestError, match="0 or 1"):
        P.limit_value(RiskLimit.TRADABLE, 2, None)


def test_instrument_resolution():
    assert INSTS.resolve(None) is None and INSTS.resolve("all") is None and INSTS.resolve(0) is None
    assert INSTS.resolve("2").symbol == "ETHUSDT"
    with pytest.raises(P.RequestError) as e:
        INSTS.resolve("DOGE")
    assert e.value.code == "unknown_instrument"
    with pytest.raises(P.RequestError) as e:
        INSTS.resolve(True)
    assert e.value.code == "bad_arguments"


def test_config_plan_validates_every_key_before_anything_is_sent():
    plan = P.plan_config({"risk.max_position": "2", "strategy.spread": 5, "strategy.params.size": True},
                         "BTCUSDT", INSTS, ("spread", "size"))
    assert [(u.cmd, u.instrument, u.arg0, u.arg1) for u in plan] == [
        (ControlCmdType.SET_LIMIT, 1, RiskLimit.MAX_POSITION, 2000), (ControlCmdType.SET_PARAM, 0, 0, 5),
        (ControlCmdType.SET_PARAM, 0, 1, 1)]
    for bad in ({"risk.max_position": "2", "strategy.nope": 1}, {"feed.kind": "x"}, {}, {"strategy.spread": "wide"}):
        with pytest.raises(P.RequestError) as e:
            P.plan_config(bad, "BTCUSDT", INSTS, ("spread", "size"))
        assert e.value.code == "bad_arguments"
    with pytest.raises(P.RequestError, match="not known"):
        P.plan_config({"strategy.spread": 1}, None, INSTS, None)
    assert P.plan_config({"strategy.params.3": 1}, None, INSTS, None)[0].arg0 == 3


def test_records_decode_to_json_with_enum_names():
    import numpy as np

    ts = np.zeros(1, dtype=DTYPES["TRADING_STATE"])
    ts["kind"], ts["state"], ts["prev_state"], ts["kill_latched"], ts["hseq"] = 14, 2, 0, 1, 77
    d = S.record_to_dict(ts.tobytes() + bytes(64))
    assert d == {"kind": "trading_state", "flags": 0, "instrument": 0, "seq": 0, "ts": 0, "hseq": 77,
                 "state": "HALTED", "prev_state": "ACTIVE", "kill_latched": 1, "cause": 0}
    assert S.decode_state_bits(2 | 1 << 8 | 1 << 9) == {"trading_state": "HALTED", "kill_latched": True,
                                                        "session_active": True}


def test_an_ipc_path_too_long_for_a_unix_socket_is_refused_clearly():
    with pytest.raises(ValueError, match="limited to 107 bytes"):
        P.check_bind("ipc:///tmp/" + "d" * 120 + "/control.sock", curve=False)


def test_limit_values_take_units_and_refuse_the_wrong_one():
    btc = INSTS.resolve("btcusdt")
    assert P.limit_value(RiskLimit.MAX_POSITION, "5 BTC", btc) == 5000
    assert P.limit_value(RiskLimit.MAX_POSITION, "5btc", btc) == 5000
    assert P.limit_value(RiskLimit.MAX_NOTIONAL, "100 USDT", btc) == 10000
    assert P.limit_value(RiskLimit.MAX_LOSS, "100.25 usdt", btc) == 10025
    assert P.limit_value(RiskLimit.PRICE_BAND_BPS, "0.5%", None) == 50
    assert P.limit_value(RiskLimit.PRICE_BAND_BPS, "50 bps", None) == 50
    assert P.limit_value(RiskLimit.SUBMIT_RATE, "200/s", None) == 200
    with pytest.raises(P.RequestError, match=r"max_position is counted in BTC for BTCUSDT \(its base currency\), not USDT"):
        P.limit_value(RiskLimit.MAX_POSITION, "100 USDT", btc)
    with pytest.raises(P.RequestError, match="max_notional is counted in USDT for BTCUSDT .*not BTC"):
        P.limit_value(RiskLimit.MAX_NOTIONAL, "1 BTC", btc)
    with pytest.raises(P.RequestError, match=r"max_position is counted in BTC, not in %"):
        P.limit_value(RiskLimit.MAX_POSITION, "0.5%", btc)
    with pytest.raises(P.RequestError, match="not a whole number of basis points"):
        P.limit_value(RiskLimit.PRICE_BAND_BPS, "0.005%", None)
    assert P.limit_unit_text(RiskLimit.MAX_POSITION, btc) == "BTC"
    assert P.limit_unit_text(RiskLimit.MAX_LOSS, btc) == "USDT"
    assert P.limit_unit_text(RiskLimit.SUBMIT_RATE, None) == "orders/s"


def test_an_anomaly_text_event_carries_its_message_decoded():
    """ANOMALY_TEXT is published on PUB (topic anomaly_text) with the strategy error's message as text."""
    import numpy as np

    from livestack.schema import new

    r = new("ANOMALY_TEXT", 1, hseq=7, code=9, strategy=1, action=1, error_code=0)
    msg = "RuntimeError: é boom".encode()
    r["text"][0, :len(msg)] = np.frombuffer(msg, np.uint8)
    r["length"] = len(msg)
    d = S.record_to_dict(r.tobytes())
    assert d["kind"] == "anomaly_text" and d["text"] == "RuntimeError: é boom" and d["hseq"] == 7
    assert d["code"] == "STRATEGY_ERROR" and d["action"] == "DISABLE" and d["strategy"] == 1
