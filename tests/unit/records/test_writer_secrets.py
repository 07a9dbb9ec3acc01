"""Secrets stay secret (issue 12): session files were 0644 and carried the full config, FIX password
included, readable by ``nobody``. Written here through the real writer with the config the
supervisor hands it (``config.validate`` of a TOML with a FIX venue)."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import stat

import h5py
import numpy as np

from livestack import cli, secrets
from livestack.node import config
from livestack.records.writer import RecordWriter
from livestack.schema import SLOT128, new

PASSWORD = "hunter2-FIX-pw-7f3a"
API_SECRET = "sk-live-0123456789abcdef"


def _cfg(tmp_path):
    cfg = config.validate({
        "venue": {"kind": "fix", "options": {"host": "127.0.0.1", "port": 9878, "username": "ops",
                                             "password": PASSWORD, "store_dir": str(tmp_path / "fix")}},
        "feed": {"kind": "binance"},
    })
    # keys of a kind that takes API keys (the feed's own schema has none: set after validation)
    cfg["feed"]["options"].update(api_key="AKIA-not-public", api_secret=API_SECRET)
    return cfg


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_session_file_holds_no_secret_and_is_owner_only(tmp_path):
    cfg = _cfg(tmp_path)
    records = tmp_path / "records"
    path = records / "2026-01-01" / "sess.h5"
    attrs = {"session": "sess", "config": cfg, "cpu": cfg["cpu"], "venue_password": PASSWORD,
             "instruments": [i.__dict__ for i in config.instruments(cfg)]}
    w = RecordWriter(str(path), attrs)
    r = new("CONTROL_CMD", 1, instrument=1, seq=1, ts=1)
    s = np.zeros(1, SLOT128)
    s.view(np.uint8)[:r.dtype.itemsize] = r.view(np.uint8)
    w.write(s)
    w.flush()
    assert _mode(str(path) + ".lock") == 0o600
    w.close()
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700  # the directory that holds session files is owner-only
    raw = path.read_bytes()
    for secret in (PASSWORD, API_SECRET, "AKIA-not-public"):
        assert secret.encode() not in raw  # no attribute, no dataset, no stale metadata block has it
    with h5py.File(path, "r") as f:
        stored = json.loads(f.attrs["config"])
        assert stored["venue"]["options"]["password"] == secrets.REDACTED
        assert stored["feed"]["options"]["api_secret"] == secrets.REDACTED
        assert stored["venue"]["options"]["username"] == "ops"  # not a secret: kept
        assert stored["risk"] == json.loads(json.dumps(cfg["risk"]))  # replay still has what it needs
        assert f.attrs["venue_password"] == secrets.REDACTED


def test_an_existing_records_dir_is_tightened_and_an_old_0644_file_reopened_becomes_0600(tmp_path):
    d = tmp_path / "day"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    path = d / "s.h5"
    RecordWriter(str(path), {"config": {}}).close()
    os.chmod(path, 0o644)  # as older versions left it
    RecordWriter(str(path)).close()
    assert _mode(d) == 0o700 and _mode(path) == 0o600


def test_private_dir_makes_every_directory_it_creates_0700_and_leaves_existing_parents(tmp_path):
    """What the supervisor does for ``<records_dir>/<date>`` before anything is written."""
    os.chmod(tmp_path, 0o755)
    leaf = tmp_path / "records" / "2026-01-01"
    secrets.private_dir(str(leaf))
    assert _mode(leaf) == _mode(leaf.parent) == 0o700 and _mode(tmp_path) == 0o755


def test_private_dir_leaves_an_existing_shared_directory_alone(tmp_path):
    """A session file written straight into /tmp (sticky, writable by all) must not make /tmp 0700:
    run as root that broke every other user of /tmp (apt's sandbox user, in CI)."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    secrets.private_dir(str(shared))
    assert _mode(shared) == 0o1777
    RecordWriter(str(shared / "s.h5")).close()
    assert _mode(shared) == 0o1777 and _mode(shared / "s.h5") == 0o600
    own = tmp_path / "mine"
    own.mkdir()
    os.chmod(own, 0o755)
    secrets.private_dir(str(own))  # an ordinary existing leaf we own is still made private
    assert _mode(own) == 0o700


def test_redaction_by_name_and_by_schema():
    cfg = {"venue": {"options": {"password": "p", "new_password": "n", "Passwd": "x", "username": "u"}},
           "feed": {"options": {"listen_key": "lk", "symbols": ["BTCUSDT"]}},
           "control": {"curve_secret_key": "/k/server.key_secret", "curve_authorized_keys": ["/k/c.key"]},
           "strategy": {"params": {"spread": 5, "token_bucket": 3}},
           "other": {"my_api_key": "a", "access_token": "t", "empty_password": "", "raw": "8=FIX.4.4\x01554=pw\x01"}}
    red = secrets.redact_config(cfg)
    R = secrets.REDACTED
    assert red["venue"]["options"] == {"password": R, "new_password": R, "Passwd": R, "username": "u"}
    assert red["feed"]["options"] == {"listen_key": R, "symbols": ["BTCUSDT"]}
    assert red["control"] == {"curve_secret_key": R, "curve_authorized_keys": ["/k/c.key"]}
    assert red["strategy"] == cfg["strategy"]  # strategy parameters are needed by replay
    assert red["other"]["my_api_key"] == R and red["other"]["access_token"] == R
    assert red["other"]["empty_password"] == "" and "pw" not in red["other"]["raw"]
    assert cfg["venue"]["options"]["password"] == "p"  # a copy: the running config is untouched


def test_config_show_redacts(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(f'[venue]\nkind = "fix"\n[venue.options]\npassword = "{PASSWORD}"\nusername = "ops"\n')
    assert cli.main(["config", "show", str(p)]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out and secrets.REDACTED in out and '"ops"' in out


def _child_logs(path):
    import livestack.node.supervisor  # noqa: F401 - what every supervised child imports first (its entry point)

    logging.basicConfig(filename=path, level=logging.INFO)
    log = logging.getLogger("livestack.venues.fix")
    log.info("logon with password=%s", PASSWORD)
    log.warning("sent 8=FIX.4.4\x0135=A\x01553=ops\x01554=%s\x0110=000\x01", PASSWORD)
    log.info("options %s", {"api_secret": API_SECRET, "host": "h"})


def test_every_process_the_supervisor_starts_logs_without_secrets(tmp_path):
    log = tmp_path / "child.log"
    p = mp.get_context("spawn").Process(target=_child_logs, args=(str(log),))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    text = log.read_text()
    assert "logon with password=" in text and "553=ops" in text and "'host': 'h'" in text
    assert PASSWORD not in text and API_SECRET not in text


def test_open_private_creates_log_files_0600(tmp_path):
    p = tmp_path / "x.log"
    with secrets.open_private(str(p)) as f:
        f.write("x")
    assert _mode(p) == 0o600
    os.chmod(p, 0o644)
    secrets.open_private(str(p)).close()
    assert _mode(p) == 0o600
