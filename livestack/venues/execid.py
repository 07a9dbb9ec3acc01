"""A venue execution id's identity: 128 bits derived from the exact id the venue sent.

Venues name executions with strings (FIX ExecID ``"777-1"``, Binance trade ids, ...). The EXEC and
FILL records carry the id as two int64 words, ``exec_id`` (low 64 bits) and ``exec_id_hi`` (high
64 bits), of BLAKE2b-128 over the id's exact bytes, so that:

* two different strings are two fills (``"777-1"``, ``"777-2"`` and ``"00777"`` all differ; the
  chance that two distinct ids of one session share 128 bits is ~n^2 / 2^129);
* the same string always gives the same words, in every process and after any restart, so a
  venue that repeats an execution (a resend, a restarted adapter) is deduplicated by the core;
* ``(0, 0)`` never names an execution: it means "no exec id" (acks, cancels).

An empty id is not an id: :func:`exec_id_words` raises :class:`BadExecId`, and the adapter rejects
the message with an anomaly instead of letting the core deduplicate it away.

:class:`ExecIdRegistry` keeps the strings it has seen, so an adapter can check that no two
distinct strings ever map to the same words (a collision is reported, never silently merged).
"""

from __future__ import annotations

import hashlib

__all__ = ["BadExecId", "ExecIdCollision", "ExecIdRegistry", "exec_id_words"]

_MASK64 = (1 << 64) - 1


class BadExecId(ValueError):
    """An execution id that is empty or not text."""


class ExecIdCollision(RuntimeError):
    """Two distinct execution ids produced the same 128-bit identity."""


def _signed(u: int) -> int:
    return u - (1 << 64) if u >= (1 << 63) else u


def exec_id_words(exec_id: str | bytes) -> tuple[int, int]:
    """``(exec_id, exec_id_hi)``: the signed int64 words of an execution id's 128-bit identity.

    Parameters
    ----------
    exec_id : str or bytes
        The id exactly as the venue sent it (no stripping, no case folding, no number parsing).

    Raises
    ------
    BadExecId
        If the id is empty or neither str nor bytes.
    """
    if isinstance(exec_id, str):
        raw = exec_id.encode("utf-8", "surrogateescape")
    elif isinstance(exec_id, (bytes, bytearray, memoryview)):
        raw = bytes(exec_id)
    else:
        raise BadExecId(f"execution id must be text, got {type(exec_id).__name__}")
    if not raw:
        raise BadExecId("empty execution id")
    digest = int.from_bytes(hashlib.blake2b(raw, digest_size=16, person=b"livestack-exec").digest(), "little")
    lo, hi = digest & _MASK64, digest >> 64
    if lo == 0 and hi == 0:  # reserved for "no exec id"; unreachable in practice
        lo = 1
    return _signed(lo), _signed(hi)


class ExecIdRegistry:
    """Exec id strings seen by one adapter process, with a collision check on their identities."""

    __slots__ = ("_by_words",)

    def __init__(self) -> None:
        self._by_words: dict[tuple[int, int], bytes] = {}

    def words(self, exec_id: str | bytes) -> tuple[int, int]:
        """Like :func:`exec_id_words`, and raises :class:`ExecIdCollision` if another string had them."""
        w = exec_id_words(exec_id)
        raw = exec_id.encode("utf-8", "surrogateescape") if isinstance(exec_id, str) else bytes(exec_id)
        seen = self._by_words.setdefault(w, raw)
        if seen != raw:
            raise ExecIdCollision(f"execution ids {seen!r} and {raw!r} share the identity {w}")
        return w

    def __len__(self) -> int:
        return len(self._by_words)
