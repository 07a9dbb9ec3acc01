"""``tools/launch-pinned.sh`` as a careless operator uses it (``--dry-run``: nothing is started)."""

from __future__ import annotations

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, "tools", "launch-pinned.sh")
NCPU = os.cpu_count() or 1


def launch(*args, tmpdir=None):
    env = dict(os.environ)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=60, env=env)


def test_unknown_flag_is_an_error_not_a_config_path(tmp_path):
    r = launch("--harness-cpus", "1", "--dry-run", tmpdir=tmp_path)
    assert r.returncode == 2
    assert "unknown option '--harness-cpus'" in r.stderr
    assert "starting" not in r.stdout


def test_two_configs_is_an_error(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text("")
    b.write_text("")
    r = launch(str(a), str(b), "--dry-run")
    assert r.returncode == 2 and "one CONFIG only" in r.stderr


def test_missing_config_and_missing_value_are_errors(tmp_path):
    r = launch(str(tmp_path / "nope.toml"), "--dry-run")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = launch("--harness-cpu", "--dry-run")
    assert r.returncode == 2 and "--harness-cpu needs a value" in r.stderr


def test_harness_cpu_flag_and_cpu_table_that_disagree_is_an_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[cpu]\nharness = 0\n")
    r = launch("--harness-cpu", "1", str(cfg), "--dry-run")
    assert r.returncode == 2
    assert "--harness-cpu 1 disagrees with [cpu] harness = 0" in r.stderr


def test_cpu_table_without_harness_and_a_flag_is_an_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[cpu]\nwriter = 0\n")
    r = launch("--harness-cpu", "0", str(cfg), "--dry-run")
    assert r.returncode == 2 and "without 'harness'" in r.stderr


def test_dry_run_reports_the_cpu_set_applied_and_leaves_no_temp_file(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = launch("--harness-cpu", "0", "--other-cpus", "0", "--dry-run", tmpdir=tmp)
    assert r.returncode == 0, r.stderr
    assert "CPU set applied: supervisor on CPUs 0 (taskset -c 0), harness pinned to CPU 0" in r.stdout
    assert "taskset -c 0 " in r.stdout and "dry run: not starting" in r.stdout
    assert "[cpu]\nharness = 0\n" in r.stdout
    assert list(tmp.iterdir()) == []  # the merged config was unlinked


@pytest.mark.skipif(NCPU < 2, reason="needs two CPUs")
def test_cpu_table_gives_the_harness_cpu(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[cpu]\nharness = 0\n")
    r = launch(str(cfg), "--dry-run", tmpdir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "harness pinned to CPU 0" in r.stdout
    assert "taskset -c 1" in r.stdout  # the rest, without the harness CPU: what is really applied
