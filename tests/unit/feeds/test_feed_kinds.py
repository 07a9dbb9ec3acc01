"""Feed kinds okx / kraken / dbn in the config: accepted with their options, rejected with a clear
message naming the bad option (each kind's msgspec Struct is its config contract)."""

from __future__ import annotations

import pytest

from livestack.node import config


def _load(tmp_path, feed: str):
    p = tmp_path / "c.toml"
    p.write_text(feed)
    return config.load(str(p))


@pytest.mark.parametrize("kind,opts", [
    ("okx", 'channel = "books-l2-tbt"\ntransport = "websockets"'),
    ("kraken", "version = 1\ndepth = 100"),
    ("dbn", 'path = "x.dbn.zst"\npace = "recorded"'),
])
def test_feed_kind_accepted(tmp_path, kind, opts, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.dbn.zst").write_bytes(b"")  # the config checks that the dbn file exists
    cfg = _load(tmp_path, f'[feed]\nkind = "{kind}"\n[feed.options]\n{opts}\n')
    assert cfg["feed"]["kind"] == kind


@pytest.mark.parametrize("kind,opts,msg", [
    ("okx", 'chanel = "books"', "chanel"),
    ("okx", 'transport = "carrier-pigeon"', "transport"),
    ("kraken", "depth = 7", "depth"),
    ("dbn", 'pace = "max"', "path"),
    ("dbn", 'path = "no-such.dbn.zst"', "no such file"),
])
def test_feed_kind_bad_options(tmp_path, kind, opts, msg):
    with pytest.raises(config.ConfigError, match=msg):
        _load(tmp_path, f'[feed]\nkind = "{kind}"\n[feed.options]\n{opts}\n')
