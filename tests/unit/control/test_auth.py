"""Control-surface security settings: key files, ``ctl keygen``, and config validation that refuses
an endpoint it cannot serve safely before any process starts (issue 12)."""

from __future__ import annotations

import os
import stat

import pytest

from livestack import cli
from livestack.control import auth
from livestack.node import config


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    return {n: auth.keygen(str(d), n) for n in ("server", "client", "ops")}


def _toml(tmp_path, text: str) -> str:
    p = tmp_path / "stack.toml"
    p.write_text(text)
    return str(p)


def test_keygen_writes_a_public_certificate_and_a_0600_secret_one(tmp_path, capsys):
    d = tmp_path / "k"
    assert cli.main(["ctl", "keygen", str(d), "--name", "ops"]) == 0
    out = capsys.readouterr().out
    pub, sec = d / "ops.key", d / "ops.key_secret"
    assert stat.S_IMODE(os.stat(sec).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pub).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert str(sec) in out and "secret-key" not in pub.read_text()
    p, s = auth.read_secret_certificate(str(sec))
    assert len(p) == len(s) == 40 and auth.read_public_keys(str(pub)) == {p}
    # a second keygen does not silently replace a key pair that clients may already trust
    assert cli.main(["ctl", "keygen", str(d), "--name", "ops"]) == 2
    assert "exists" in capsys.readouterr().err
    assert auth.read_secret_certificate(str(sec)) == (p, s)
    assert cli.main(["ctl", "keygen", str(d), "--name", "ops", "--force"]) == 0
    assert auth.read_secret_certificate(str(sec)) != (p, s) and stat.S_IMODE(os.stat(sec).st_mode) == 0o600


def test_the_toml_schema_accepts_curve_key_files_and_makes_them_absolute(tmp_path, keys, monkeypatch):
    monkeypatch.chdir(keys["server"][0].rsplit("/", 1)[0])
    path = _toml(tmp_path, """
[control]
endpoint = "tcp://127.0.0.1:7001"
pub_endpoint = "tcp://127.0.0.1:7002"
curve_secret_key = "server.key_secret"
curve_authorized_keys = ["client.key", "ops.key"]
""")
    cfg = config.load(path)
    ctl = cfg["control"]
    assert ctl["curve_secret_key"] == keys["server"][1]
    assert ctl["curve_authorized_keys"] == [keys["client"][0], keys["ops"][0]]
    curve = auth.check_options(ctl)
    assert curve.authorized == auth.read_public_keys([keys["client"][0], keys["ops"][0]])
    # one path (a file or a directory of *.key) is accepted where a list is expected
    cfg = config.validate({"control": {"endpoint": "tcp://127.0.0.1:7001", "curve_secret_key": keys["server"][1],
                                       "curve_authorized_keys": os.path.dirname(keys["client"][0])}})
    assert len(auth.check_options(cfg["control"]).authorized) == 3


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:7001", "tcp://localhost:7001", "tcp://[::1]:7001",
                                      "tcp://0.0.0.0:7001", "tcp://*:7001", "tcp://10.1.2.3:7001"])
def test_any_tcp_endpoint_without_curve_is_a_config_error(endpoint):
    with pytest.raises(config.ConfigError, match="without CURVE keys"):
        config.validate({"control": {"endpoint": endpoint}})
    with pytest.raises(config.ConfigError, match="without CURVE keys"):
        config.validate({"control": {"pub_endpoint": endpoint}})


def test_the_default_ipc_endpoint_and_a_disabled_control_need_no_keys():
    assert config.validate({})["control"]["endpoint"] == ""
    config.validate({"control": {"enabled": False, "endpoint": "tcp://0.0.0.0:1"}})


def test_unsafe_or_unreadable_keys_are_config_errors(tmp_path, keys):
    ep = "tcp://127.0.0.1:7001"
    ok = {"endpoint": ep, "curve_secret_key": keys["server"][1], "curve_authorized_keys": [keys["client"][0]]}
    config.validate({"control": ok})
    shared = tmp_path / "shared.key_secret"
    shared.write_bytes(open(keys["server"][1], "rb").read())
    os.chmod(shared, 0o644)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a certificate\n")
    garbage_secret = tmp_path / "garbage.key_secret"
    garbage_secret.write_text("metadata\ncurve\n")
    os.chmod(garbage_secret, 0o600)
    empty_dir = tmp_path / "nokeys"
    empty_dir.mkdir()
    cases = [
        (dict(ok, curve_secret_key=str(tmp_path / "missing.key_secret")), "no such file"),
        (dict(ok, curve_secret_key=str(shared)), "chmod 600"),
        (dict(ok, curve_secret_key=keys["server"][0]), "chmod 600|public certificate"),
        (dict(ok, curve_secret_key=str(garbage_secret)), "public-key|not a ZeroMQ certificate"),
        (dict(ok, curve_secret_key=str(tmp_path)), "not a regular file"),
        (dict(ok, curve_authorized_keys=[]), "curve_authorized_keys"),
        (dict(ok, curve_authorized_keys=[str(tmp_path / "nope.key")]), "no such file"),
        (dict(ok, curve_authorized_keys=[str(garbage)]), "public-key|not a ZeroMQ certificate"),
        (dict(ok, curve_authorized_keys=[str(empty_dir)]), "no \\*.key"),
        (dict(ok, curve_secret_key=""), "curve_secret_key is not"),
        (dict(ok, curve_secret_key="rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"), "never the key itself"),
        (dict(ok, curve_authorized_keys=[1]), r"curve_authorized_keys\[0\]' must be str"),
        (dict(ok, endpoint="udp://1.2.3.4:5"), "expected ipc"),
    ]
    for ctl, match in cases:
        with pytest.raises(config.ConfigError, match=match):
            config.validate({"control": ctl})
    if os.geteuid() != 0:  # root reads any file; the mode check above covers root
        os.chmod(keys["server"][1], 0)
        with pytest.raises(config.ConfigError, match="not readable"):
            config.validate({"control": ok})


def test_livestack_run_refuses_an_unsafe_control_endpoint_before_starting_anything(tmp_path, capsys, monkeypatch):
    """Issue 12: a non-loopback endpoint without CURVE passed validation, then the control process
    restart-looped while trading went on without a kill switch."""
    from livestack.node import supervisor

    started = []
    monkeypatch.setattr(supervisor.Supervisor, "start", lambda self: started.append(self))
    for ep in ("tcp://0.0.0.0:7001", "tcp://127.0.0.1:7001"):
        path = _toml(tmp_path, f'[control]\nendpoint = "{ep}"\n')
        assert cli.main(["run", path, "--duration", "0.1"]) == 2
        assert "without CURVE keys" in capsys.readouterr().err
    assert not started


def test_curve_needs_an_allow_list_in_the_server_api_too():
    import zmq

    pub, sec = zmq.curve_keypair()
    with pytest.raises(ValueError, match="curve_authorized_keys"):
        auth.check_options({"endpoint": "tcp://127.0.0.1:1", "curve_secret_key": sec, "curve_public_key": pub})
    with pytest.raises(ValueError, match="curve_public_key"):
        auth.check_options({"endpoint": "tcp://127.0.0.1:1", "curve_secret_key": sec, "curve_authorized_keys": [pub]})
