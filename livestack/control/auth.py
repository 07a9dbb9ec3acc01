"""Who may talk to the control surface: endpoint policy, CURVE keys, ZAP authentication.

The trust boundary is the uid the stack runs as (see docs/SECURITY.md)::

    ipc://PATH        the socket file is created 0600 (umask 0177 at bind) in a 0700 directory:
                      only the stack's uid (and root) can connect. No keys needed.
    tcp://HOST:PORT   ANY tcp endpoint, loopback included (every local user can connect to
                      127.0.0.1), needs CURVE: the server's key pair from a secret certificate
                      file, and an allow list of client public keys (certificate files or a
                      directory of them). A client whose key is not on the list, a client that
                      does not know the server's key, and a plain (NULL) client are all refused
                      during the handshake: their request never reaches the control loop.

An endpoint that cannot be served safely (tcp without keys, keys that cannot be read, a secret
certificate readable by group or others, an empty allow list) is a ``ValueError`` naming the
problem; ``livestack.node.config.validate`` turns it into a config error before any process
starts.

ZAP (ZeroMQ RFC 27) is answered by pyzmq's :class:`zmq.auth.thread.ThreadAuthenticator` with a
callback that checks the allow list; the sockets set ``ZMQ_ZAP_ENFORCE_DOMAIN`` so that a missing
ZAP handler refuses clients instead of letting every CURVE client in.

Key files are the ZeroMQ certificate format (``zmq.auth``), written by ``livestack ctl keygen``:
``NAME.key`` (public, shareable) and ``NAME.key_secret`` (public + secret, mode 0600).
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import os
import re
import stat
from dataclasses import dataclass

import zmq

IPC_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
ZAP_DOMAIN = "livestack"

_TCP = re.compile(r"^tcp://(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:]+)):(?P<port>\d+|\*)$")
_Z85 = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


def is_local_endpoint(endpoint: str) -> bool:
    """True for ipc:// and tcp:// on a loopback address (reachable from this host only).

    Local is not the same as safe: any user of this host can connect to a loopback port, so
    :func:`check_endpoint` asks CURVE of every tcp endpoint.
    """
    if endpoint.startswith("ipc://") or endpoint.startswith("inproc://"):
        return True
    m = _TCP.match(endpoint)
    if not m:
        return False
    host = m.group("v6") or m.group("host")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # an interface name or '*'


def check_endpoint(endpoint: str, curve: bool) -> None:
    """ValueError unless ``endpoint`` can be served safely (see the module docstring)."""
    if not isinstance(endpoint, str) or not endpoint.startswith(("ipc://", "tcp://", "inproc://")):
        raise ValueError(f"control endpoint {endpoint!r}: expected ipc://PATH or tcp://HOST:PORT")
    if endpoint.startswith("ipc://") and len(os.fsencode(os.path.abspath(endpoint[6:]))) > IPC_PATH_MAX:
        raise ValueError(f"control endpoint {endpoint}: a unix socket path is limited to {IPC_PATH_MAX} bytes; "
                         "use a shorter session directory")
    if endpoint.startswith("tcp://"):
        if not _TCP.match(endpoint):
            raise ValueError(f"control endpoint {endpoint!r}: expected tcp://HOST:PORT")
        if not curve:
            where = "loopback: every local user can connect to it" if is_local_endpoint(endpoint) else \
                "reachable from other hosts"
            raise ValueError(
                f"refusing to bind the control surface to {endpoint} without CURVE keys ({where}). "
                "A tcp control endpoint must be encrypted and authenticated: set control.curve_secret_key "
                "(the server's secret certificate from `livestack ctl keygen`) and control.curve_authorized_keys "
                "(the clients' public certificates), or use an ipc:// endpoint (the default, owner-only)")


# ---- key files -------------------------------------------------------------------------------

def _readable_file(path: str, what: str) -> str:
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"{what} {path}: no such file") from None
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot stat ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what} {path}: not readable by this user")
    return path


def _load_certificate(path: str, what: str) -> tuple[bytes, bytes | None]:
    import zmq.auth

    try:
        pub, sec = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what} {path}: not a ZeroMQ certificate ({e})") from None
    if pub is None or not _Z85.match(pub.decode("ascii", "replace")):
        raise ValueError(f"{what} {path}: no valid public-key in the certificate")
    return pub, sec


def read_secret_certificate(path) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys of a secret certificate file; ValueError when it is missing,
    unreadable, not a secret certificate, or readable by group/others (like ssh, refuse a
    secret that others could have copied)."""
    path = _readable_file(path, "CURVE secret key")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise ValueError(f"CURVE secret key {path}: mode {mode:04o} lets group/others read it; chmod 600 {path}")
    pub, sec = _load_certificate(path, "CURVE secret key")
    if sec is None or not _Z85.match(sec.decode("ascii", "replace")):
        raise ValueError(f"CURVE secret key {path}: no secret-key in it (this is a public certificate; "
                         "give NAME.key_secret from `livestack ctl keygen`)")
    return pub, sec


def read_public_keys(value) -> frozenset[bytes]:
    """Client public keys (Z85) from a certificate file, a directory of ``*.key`` files, or a
    list of those; ValueError when a path cannot be read or nothing is found."""
    if value is None or value == "" or value == []:
        raise ValueError("CURVE authorized keys: none given")
    items = [value] if isinstance(value, (str, bytes, os.PathLike)) else list(value)
    out: set[bytes] = set()
    for item in items:
        if isinstance(item, bytes):
            item = item.decode("ascii", "replace")
        item = os.fspath(item)
        if _Z85.match(item) and not os.path.exists(item):  # a Z85 key given inline (API, tests)
            out.add(item.encode())
            continue
        p = os.path.abspath(os.path.expanduser(item))
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if n.endswith(".key"))
            if not names:
                raise ValueError(f"CURVE authorized keys {p}: no *.key certificate in this directory")
            for n in names:
                out.add(_load_certificate(_readable_file(os.path.join(p, n), "CURVE authorized key"),
                                          "CURVE authorized key")[0])
        else:
            out.add(_load_certificate(_readable_file(p, "CURVE authorized key"), "CURVE authorized key")[0])
    return frozenset(out)


@dataclass(frozen=True)
class CurveKeys:
    """The server's key pair and the client keys it accepts (all Z85)."""
    public: bytes
    secret: bytes
    authorized: frozenset[bytes]


def curve_keys(options: dict) -> CurveKeys | None:
    """The CURVE settings of a control-options dict, or None when CURVE is off; ValueError when
    they are incomplete or unreadable.

    ``curve_secret_key``: path of the server's secret certificate (``curve_keys`` is an alias); the
    Python API also takes a Z85 secret with ``curve_public_key`` (never the config file: a key in a
    config file would travel with every copy of it). ``curve_authorized_keys``: see
    :func:`read_public_keys`.
    """
    secret = options.get("curve_secret_key") or options.get("curve_keys") or None
    authorized = options.get("curve_authorized_keys")
    if not secret:
        if authorized:
            raise ValueError("control.curve_authorized_keys is set but control.curve_secret_key is not: "
                             "CURVE needs the server's secret certificate")
        return None
    if isinstance(secret, bytes):
        secret = secret.decode("ascii", "replace")
    if _Z85.match(str(secret)) and not os.path.exists(str(secret)):
        public = options.get("curve_public_key")
        if not public:
            raise ValueError("CURVE: a Z85 curve_secret_key needs curve_public_key (or give a certificate file)")
        pub, sec = (public if isinstance(public, bytes) else str(public).encode()), str(secret).encode()
    else:
        pub, sec = read_secret_certificate(secret)
    if not authorized:
        raise ValueError("CURVE without control.curve_authorized_keys would let any client that knows the "
                         "server's public key in: list the clients' public certificates (files or a directory)")
    return CurveKeys(pub, sec, read_public_keys(authorized))


def check_options(options: dict, endpoint: str | None = None, pub_endpoint: str | None = None) -> CurveKeys | None:
    """Validate the endpoints and keys of a control-options dict; the CURVE keys (or None)."""
    keys = curve_keys(options)
    for ep in (endpoint if endpoint is not None else options.get("endpoint"),
               pub_endpoint if pub_endpoint is not None else options.get("pub_endpoint")):
        if ep and ep != "-":
            check_endpoint(ep, keys is not None)
    return keys


# ---- server side -----------------------------------------------------------------------------

def make_curve_server(sock: zmq.Socket, keys: CurveKeys) -> None:
    """Make ``sock`` a CURVE server that asks ZAP (domain ``livestack``) about every client and
    refuses clients when no ZAP handler answers."""
    sock.curve_server = True
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.zap_domain = ZAP_DOMAIN.encode()
    sock.zap_enforce_domain = 1


class Authenticator:
    """ZAP handler of one context: pyzmq's ThreadAuthenticator with an allow-list callback.

    Refused keys are queued in :attr:`refused` (Z85 text) for the control loop to report; the
    callback runs on the authenticator's thread and touches nothing else.
    """

    def __init__(self, ctx: zmq.Context, authorized: frozenset[bytes]):
        from zmq.auth.thread import ThreadAuthenticator

        self.authorized = frozenset(authorized)
        self.refused: collections.deque = collections.deque(maxlen=1000)
        self.accepted = 0
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("livestack.control.auth"))
        self._auth.start()
        self._auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        ok = domain == ZAP_DOMAIN and key in self.authorized
        if ok:
            self.accepted += 1
        else:
            self.refused.append(key.decode("ascii", "replace"))
        return ok

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None


# ---- key generation --------------------------------------------------------------------------

def keygen(directory: str, name: str = "livestack", force: bool = False) -> tuple[str, str]:
    """Write ``<directory>/<name>.key`` (public, 0644) and ``<name>.key_secret`` (0600, created
    that way: never readable by others, not even for an instant). Refuses to overwrite unless
    ``force``. Returns (public path, secret path)."""
    import zmq.auth

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"key name {name!r}: letters, digits, '_', '-', '.' only")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    pub_path = os.path.join(directory, name + ".key")
    sec_path = pub_path + "_secret"
    if not force and (os.path.exists(pub_path) or os.path.exists(sec_path)):
        raise FileExistsError(f"{sec_path} or {pub_path} exists (pass --force to replace the key pair)")
    for p in (pub_path, sec_path):  # an old file keeps its mode when rewritten: start from none
        if os.path.exists(p):
            os.unlink(p)
    old = os.umask(0o077)
    try:
        pub, sec = zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(old)
    os.chmod(sec, 0o600)
    os.chmod(pub, 0o644)
    return pub, sec
