"""Logging for every livestack process: one line format with the process name and the session.

``livestack --log-level LEVEL --log-json run ...``: the supervisor configures itself with
:func:`setup` and hands the same settings to every child through the environment
(``LIVESTACK_LOG_*``); each child calls :func:`setup_from_env` first thing. Lines go to stderr
at ``--log-level`` (default WARNING: a quiet terminal) and, for a live session, to the session's
log file next to its records (``<records>/<date>/<name>-<session>.log``) at INFO or lower, every
process appending to the same file.

Text: ``2026-01-01T12:00:00.123Z WARNING harness[4242] 3f9c1a livestack.harness: message``
JSON (``--log-json``): one object a line: ts, level, process, pid, session, logger, msg (+ exc).
Code logs with ``logging.getLogger(__name__)``; ``print`` is for CLI output only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

ENV_LEVEL, ENV_JSON, ENV_FILE, ENV_SESSION = ("LIVESTACK_LOG_LEVEL", "LIVESTACK_LOG_JSON", "LIVESTACK_LOG_FILE",
                                              "LIVESTACK_SESSION")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Context(logging.Filter):
    def __init__(self, process: str, session: str):
        super().__init__()
        self.process_name, self.session = process, session

    def filter(self, record):
        record.lsproc = self.process_name
        record.session = self.session or "-"
        return True


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(lsproc)s[%(process)d] %(session)s %(name)s: %(message)s")

    def formatTime(self, record, datefmt=None):  # noqa: N802 -- logging's name
        t = time.gmtime(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


class JsonFormatter(TextFormatter):
    def format(self, record):
        out = {"ts": self.formatTime(record), "level": record.levelname, "process": getattr(record, "lsproc", "-"),
               "pid": record.process, "session": getattr(record, "session", "-"), "logger": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


_HANDLERS: list[logging.Handler] = []


def setup(process: str, session: str = "", level: str = "WARNING", as_json: bool = False,
          file: str | None = None) -> None:
    """Configure the root logger of this process (again: replaces what an earlier call set)."""
    level = str(level).upper()
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    for h in _HANDLERS:
        root.removeHandler(h)
        h.close()
    _HANDLERS.clear()
    fmt = JsonFormatter() if as_json else TextFormatter()
    ctx = _Context(process, session)
    err = logging.StreamHandler(_SafeStderr())
    err.setLevel(level)
    _HANDLERS.append(err)
    if file:
        os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
        fh = logging.FileHandler(file, mode="a", encoding="utf-8", delay=False)
        fh.setLevel(min(logging.INFO, logging.getLevelName(level)))
        _HANDLERS.append(fh)
    for h in _HANDLERS:
        h.setFormatter(fmt)
        h.addFilter(ctx)
        root.addHandler(h)
    root.setLevel(min(h.level for h in _HANDLERS))


def reset() -> None:
    """Remove what :func:`setup` installed."""
    root = logging.getLogger()
    for h in _HANDLERS:
        root.removeHandler(h)
        h.close()
    _HANDLERS.clear()


def export_env(level: str, as_json: bool, file: str | None, session: str) -> None:
    """Hand the settings to the processes spawned from now on."""
    os.environ[ENV_LEVEL] = str(level).upper()
    os.environ[ENV_JSON] = "1" if as_json else ""
    os.environ[ENV_FILE] = file or ""
    os.environ[ENV_SESSION] = session


def setup_from_env(process: str, session: str = "") -> None:
    """A child's logging, as its supervisor's (:func:`export_env`); defaults when not set."""
    setup(process, session or os.environ.get(ENV_SESSION, ""), os.environ.get(ENV_LEVEL) or "WARNING",
          bool(os.environ.get(ENV_JSON)), os.environ.get(ENV_FILE) or None)


class _SafeStderr:
    """sys.stderr looked up at each write (tests and the supervisor replace it); a closed or
    broken stderr never fails a log call."""

    def write(self, s):
        try:
            sys.stderr.write(s)
        except (OSError, ValueError):
            pass

    def flush(self):
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
