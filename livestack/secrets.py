"""Secrets stay secret: redaction of configs and log text, owner-only files and directories.

What is a secret (FIX passwords, API keys and secrets, tokens, CURVE secret keys) is decided two
ways, and a value is redacted when either says so:

* **by the schema**: :data:`SECRET_PATHS`, the config keys that are declared to hold secrets
  (``venue.options.password`` is the FIX Logon Password(554), ...);
* **by name**: :data:`SECRET_NAME` matches a key anywhere in a config (``password``, ``passwd``,
  ``passphrase``, ``secret``, ``api_key``, ``..._token``, ``private_key``, ``credential``), so a secret
  in an option table this module has never heard of is still caught.

Where it is applied: the session file's config and attributes (``records.writer``), ``livestack
config show``, and every log record of every process once :func:`install_log_redaction` ran
(importing ``livestack.node`` does it: every process the supervisor starts; FIX ``554=``/``925=`` fields and
``password=...`` pairs are masked in the formatted message).

Files: session files, lock files and logs are created 0600 (:func:`create_private_file`,
:func:`open_private`), the directories that hold them 0700 (:func:`private_dir`): the trust
boundary is the uid the stack runs as.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import stat

REDACTED = "***redacted***"

#: config keys declared to hold secrets (dotted paths; ``*`` matches one level)
SECRET_PATHS = frozenset({
    "venue.options.password",          # FIX Logon Password (554)
    "venue.options.new_password",      # FIX Logon NewPassword (925)
    "venue.options.api_key",
    "venue.options.api_secret",
    "venue.options.secret_key",
    "feed.options.api_key",
    "feed.options.api_secret",
    "feed.options.listen_key",
    "control.curve_secret_key",        # path of the server's secret certificate: where the key lives
})

#: a key whose name says it holds a secret
SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)|secret|api[_-]?key|apikey|access[_-]?key|private[_-]?key|token$|credential|"
    r"signing[_-]?key|listen[_-]?key)", re.IGNORECASE)

# log text: key=value / "key": "value" pairs with a secret name, and FIX Password(554) / NewPassword(925)
_TEXT_PAIR = re.compile(
    r"""(?P<k>["']?\b[\w-]*(?:pass(?:word|wd|phrase)|secret|api[_-]?key|apikey|token|private[_-]?key|credential)"""
    r"""[\w-]*["']?\s*[:=]\s*["']?)(?P<v>[^\s"',;}\x01|]+)""", re.IGNORECASE)
_FIX_FIELD = re.compile(rb"(?P<pre>(?:^|[\x01|]))(?P<tag>554|925)=(?P<v>[^\x01|]*)")


def is_secret_key(path: tuple[str, ...] | str) -> bool:
    """True when the config key at ``path`` (tuple or dotted string) holds a secret."""
    parts = tuple(path.split(".")) if isinstance(path, str) else tuple(str(p) for p in path)
    if not parts:
        return False
    if parts[0] in ("feeds", "venues"):  # each [[feeds]] / [[venues]] entry: as [feed] / [venue]
        parts = (parts[0][:-1],) + parts[1:]
    if ".".join(parts) in SECRET_PATHS:
        return True
    return bool(SECRET_NAME.search(parts[-1]))


def redact_config(obj, path: tuple[str, ...] = ()):
    """A deep copy of ``obj`` (dicts, lists, scalars) with every secret value replaced by
    :data:`REDACTED` (empty values are left as they are: "not set" is no secret). Strings that
    carry FIX Password fields are masked too."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            p = path + (str(k),)
            if is_secret_key(p) and v not in (None, "", [], {}):
                out[k] = REDACTED
            else:
                out[k] = redact_config(v, p)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_config(v, path) for v in obj)
    if isinstance(obj, str) and ("554=" in obj or "925=" in obj):
        return redact_text(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return redact_config({k: getattr(obj, k) for k in obj.__dataclass_fields__}, path)
    return copy.deepcopy(obj)


def redact_text(text: str) -> str:
    """``text`` with secret ``key=value`` pairs and FIX 554/925 fields masked."""
    if not text:
        return text
    out = _TEXT_PAIR.sub(lambda m: m.group("k") + REDACTED, text)
    if "554=" in out or "925=" in out:
        raw = out.encode("utf-8", "surrogateescape")
        raw = _FIX_FIELD.sub(lambda m: m.group("pre") + m.group("tag") + b"=" + REDACTED.encode(), raw)
        out = raw.decode("utf-8", "surrogateescape")
    return out


def redact_fix(msg: bytes) -> bytes:
    """A raw FIX message with Password(554) and NewPassword(925) masked (for logs of messages)."""
    return _FIX_FIELD.sub(lambda m: m.group("pre") + m.group("tag") + b"=" + REDACTED.encode(), msg)


# ---- logs -------------------------------------------------------------------------------------

_installed = False


def install_log_redaction() -> None:
    """Mask secrets in every ``logging`` record this process creates from now on (idempotent).

    A record factory, not a handler filter: it applies to handlers configured later too
    (``logging.basicConfig`` in a process's entry point) and to every logger.
    """
    global _installed
    if _installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = base(*args, **kwargs)
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logging module's business
            return record
        red = redact_text(msg)
        if red != msg:
            record.msg, record.args = red, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


# ---- files ------------------------------------------------------------------------------------

def private_dir(path: str) -> str:
    """Create ``path`` (and missing parents) mode 0700; an existing leaf we own is set to 0700.
    Parents that already exist are left alone (they may be shared, e.g. ``/data``), and so is an
    existing leaf that is sticky or writable by all (``/tmp``: a session file written straight
    into it made it 0700 when run as root, and apt, among others, could no longer use it)."""
    path = os.path.abspath(path)
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
    st = os.stat(path)
    mode = stat.S_IMODE(st.st_mode)
    shared = mode & (stat.S_ISVTX | stat.S_IWOTH)  # /tmp, /dev/shm: a directory for everyone
    if st.st_uid == os.geteuid() and mode != 0o700 and not (shared and not missing):
        os.chmod(path, 0o700)
    return path


def create_private_file(path: str) -> None:
    """Make ``path`` an empty file of mode 0600 (replacing any file there), so that a library
    that then opens it for writing (h5py "w" truncates and keeps the mode) never makes it
    readable by others, not even for an instant."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_private(path: str) -> None:
    """Set an existing file we own to 0600 (files made by older versions were 0644)."""
    st = os.stat(path)
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)


def open_private(path: str, mode: str = "a", **kwargs):
    """``open()`` for logs and other private files: created 0600, an existing file set to 0600."""
    f = open(path, mode, opener=lambda p, flags: os.open(p, flags, 0o600), **kwargs)
    make_private(path)
    return f
