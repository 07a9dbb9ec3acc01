"""``livestack run [CONFIG]``: the whole stack (with no config: the embedded simulated venue)."""

from __future__ import annotations

import sys

from livestack.node import supervisor as sv

EXIT_CODES = f"""\
exit codes:
  {sv.EXIT_OK:<4} stopped as asked (--duration, Ctrl-C, SIGTERM) and every process ended cleanly
  {sv.EXIT_FAILED:<4} a process failed: the harness died or was killed (e.g. its strategy could not load),
       a process reported a fatal error or crash-looped, or one had to be killed at stop
  {sv.EXIT_REFUSED:<4} refused to start, nothing left running: invalid config, the harness CPU is taken
       by another livestack harness, telemetry.metrics_port in use, records disk too full
  {sv.EXIT_HANGUP:<4} SIGHUP (terminal gone): stopped in order
  {sv.EXIT_PIPE:<4} stdout closed (e.g. `livestack run | head`): stopped in order
The reason of a non-zero exit is printed on stderr."""


def _err(msg: str) -> None:
    try:
        print(f"livestack: {msg}", file=sys.stderr, flush=True)
    except OSError:
        pass


def _run(args) -> int:
    from livestack.node import config

    try:
        cfg = config.load(args.config)
    except config.ConfigError as e:
        _err(str(e))
        return sv.EXIT_REFUSED
    if args.duration is not None:
        cfg["session"]["duration_s"] = args.duration
    out = sv.SafeStream(sys.stdout)
    sys.stdout = out
    sup = sv.Supervisor(cfg, out=out, quiet=args.quiet)
    from livestack import logs

    level, as_json = getattr(args, "log_level", "WARNING"), getattr(args, "log_json", False)
    logs.setup("supervisor", sup.session, level, as_json, sup.log_path)
    logs.export_env(level, as_json, sup.log_path, sup.session)
    try:
        sup.start()
    except sv.StartRefused as e:
        sup.stop(timeout=5)
        _err(f"not starting: {e}")
        return sv.EXIT_REFUSED
    except OSError as e:
        if e.errno == 28:  # records disk too full to start (writer.min_free_mb)
            _err(e.strerror)
            sup.stop(timeout=5)
            return sv.EXIT_REFUSED
        sup.stop(timeout=5)
        raise
    except BaseException:
        sup.stop(timeout=5)
        raise
    rc = sup.run()
    if sup.failure:
        _err(f"session {sup.session} failed: {sup.failure}")
    elif rc == sv.EXIT_PIPE:
        _err(f"session {sup.session} stopped: stdout was closed")
    elif rc == sv.EXIT_HANGUP:
        _err(f"session {sup.session} stopped: SIGHUP")
    elif rc:
        _err(f"session {sup.session}: a process did not stop in time and was killed")
    return rc


def _ls(args) -> int:
    """``livestack ls``: the stacks running on this host (livestack.node.registry)."""
    import json
    import time

    from livestack.node import registry

    running = registry.stacks()
    if args.json:
        print(json.dumps(running, indent=2, sort_keys=True))
        return 0
    if not running:
        print(f"no livestack stack is running on this host (registry {registry.registry_dir()})")
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(box=None, header_style="bold")
    for col in ("SESSION", "NAME", "UP", "PIDS", "FEEDS / VENUES", "CONTROL", "METRICS", "RECORDS"):
        t.add_column(col, overflow="fold")
    now = time.time()
    for e in running:
        up = int(now - (e.get("started_at") or now))
        pids = " ".join(f"{k}={v}" for k, v in {"supervisor": e["supervisor_pid"], **e.get("pids", {})}.items())
        port = e.get("metrics_port")
        markets = " / ".join(", ".join(f"{x['name']} ({x['kind']})" for x in e.get(k) or ())
                             or str(e.get(k[:-1], "?")) for k in ("feeds", "venues"))  # by name (issue 16)
        t.add_row(e["session"], str(e.get("name")), f"{up // 3600}:{up // 60 % 60:02d}:{up % 60:02d}", pids,
                  markets, e.get("control") or "off", f"http://127.0.0.1:{port}/metrics" if port else "off",
                  e.get("records") or "off")
    Console(width=max(160, Console().width)).print(t)
    return 0


def register(sub) -> None:
    import argparse

    ls = sub.add_parser("ls", help="list the stacks running on this host (session, pids, control, metrics, records)")
    ls.add_argument("--json", action="store_true", help="the registry entries as JSON")
    ls.set_defaults(func=_ls)

    p = sub.add_parser("run", help="run the whole stack (no CONFIG: simulated market + exchange + market maker)",
                       conflict_handler="resolve", epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="TOML config file")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--quiet", action="store_true",
                   help="do not print where things are at start (records, control endpoint, metrics, CPUs)")
    p.set_defaults(func=_run)
