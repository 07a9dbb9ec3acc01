"""The ``[strategy]`` table: schema, and the check that the strategy loads before any process starts.

``[strategy]``: ``name`` (a registry name such as ``mm_cy``, ``package.module:Class`` or
``path/to/file.py:Class`` / ``file.pyx:Class``), ``params`` (a table validated against the
strategy's ``Params``), ``on_error`` (``disable`` (default) | ``halt`` | ``continue``).

``node/config.py`` calls :func:`check` from ``validate``; the supervisor puts :func:`identity` into the
session file's ``strategy`` attribute; ``replay`` compares it (``livestack.records.replay``).
"""

from __future__ import annotations

import msgspec

from livestack.strategies import loader


class StrategyConfig(msgspec.Struct, forbid_unknown_fields=True):
    """One strategy of a session (the ``[strategy]`` table)."""

    name: str = "mm_cy"
    params: dict = {}
    on_error: str = "disable"


ON_ERROR = ("disable", "halt", "continue")


def parse(table: dict) -> StrategyConfig:
    try:
        st = msgspec.convert(table, StrategyConfig)
    except msgspec.ValidationError as e:
        raise ValueError(f"[strategy]: {e}") from None
    if st.on_error not in ON_ERROR:
        raise ValueError(f"[strategy]: on_error = {st.on_error!r}: expected one of {', '.join(ON_ERROR)}")
    return st


_identities: dict = {}


def _key(table):
    return repr((table.get("name"), sorted((table.get("params") or {}).items()), table.get("on_error")))


def check(table: dict, instruments) -> dict:
    """Validate ``table`` and load the strategy it names (imported / compiled, params converted for
    the first instrument); returns its identity. The file reference in ``table['name']`` is made
    absolute in place. Raises ``ValueError`` with the reason."""
    st = parse(table)
    table["name"] = loader.normalize(st.name)
    try:
        s = loader.load(table["name"], st.params, instruments[0] if instruments else None, on_error=st.on_error)
    except loader.StrategyLoadError as e:
        raise ValueError(str(e)) from None
    ident = s.identity if s is not None else {"ref": "none"}
    _identities[_key(table)] = ident
    return ident


def build(table: dict, instruments):
    """The strategy object for the core (harness, replay, backtest)."""
    st = parse(table)
    return loader.load(loader.normalize(st.name), st.params, instruments[0] if instruments else None,
                       on_error=st.on_error)


def identity(table: dict, instruments) -> dict:
    """The strategy's identity for the session file (ref, module, path, sha256, params, flavour)."""
    table = dict(table)
    table["name"] = loader.normalize(table.get("name", ""))
    return _identities.get(_key(table)) or check(table, instruments)


# ---- the first traceback into the session file ---------------------------------------------------
# The harness holds the strategy (and its first traceback); only the writer may write the session
# file while the session runs. So the harness leaves the error report next to the records when it
# stops, and the supervisor, once every process has ended, moves it into the file's attributes
# ``strategy_errors`` (JSON: errors, last_error, first_traceback, disabled).

def _errors_path(records_dir: str, tag: str) -> str:
    import os

    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in tag)
    return os.path.join(records_dir, f".strategy-errors-{safe}.json")


def save_errors(core, records_dir: str, tag: str | None) -> dict | None:
    """Harness, after its loop: write the strategy's error report (None when it never raised)."""
    import json

    strat = core.strategy
    info = strat.error_info() if strat is not None and hasattr(strat, "error_info") else None
    if not info:
        return None
    c = core.counters()
    info = dict(info, strategy=strat.name, disabled=bool(c.get("strategy_disabled")),
                anomalies=int(c.get("strategy_errors", 0)))
    if tag:
        with open(_errors_path(records_dir, tag), "w") as f:
            json.dump(info, f)
    return info


def attach_errors(records_path: str, records_dir: str, tag: str | None) -> bool:
    """Supervisor, after every process ended: the harness's error report into the session file."""
    import json
    import os

    if not tag:
        return False
    p = _errors_path(records_dir, tag)
    if not os.path.exists(p):
        return False
    try:
        with open(p) as f:
            info = json.load(f)
        if os.path.exists(records_path):
            import h5py

            with h5py.File(records_path, "r+") as h:
                h.attrs["strategy_errors"] = json.dumps(info)
    finally:
        os.unlink(p)
    return True


# ---- several strategies per session: [[strategies]] -------------------------------------------------

class StrategyEntry(msgspec.Struct, forbid_unknown_fields=True):
    """One ``[[strategies]]`` entry: a strategy, the instruments it owns (symbols; an instrument
    belongs to at most one strategy), its params, on_error and risk limits (per-instrument keys,
    merged over ``[risk]`` for its instruments)."""

    name: str
    instruments: list[str]
    params: dict = {}
    on_error: str = "disable"
    risk: dict = {}
    label: str = ""    # its name in ctl positions, top, /metrics and records summary (default: the class)


def short_name(ref: str) -> str:
    """A strategy's default label: the class of a ``mod:Class`` / ``file.py:Class`` reference, else
    the registry name."""
    return ref.rpartition(":")[2] if ":" in ref else ref


def labels(parsed: list) -> list[str]:
    """Each ``[[strategies]]`` entry's label: its ``label``, else its class; a class used by several
    entries gets ``#index`` (``Join#0``, ``Join#1``). At most 31 bytes (the telemetry block's names)."""
    base = [st.label or short_name(st.name) for st in parsed]
    out = []
    for k, b in enumerate(base):
        name = b if (base.count(b) == 1 or parsed[k].label) else f"{b}#{k}"
        out.append(name.encode()[:31].decode("utf-8", "ignore"))
    return out


def parse_set(entries: list) -> list[StrategyEntry]:
    out = []
    for k, e in enumerate(entries):
        try:
            st = msgspec.convert(e, StrategyEntry)
        except msgspec.ValidationError as ex:
            raise ValueError(f"[[strategies]][{k}]: {ex}") from None
        if st.on_error not in ON_ERROR:
            raise ValueError(f"[[strategies]][{k}]: on_error = {st.on_error!r}: expected one of {', '.join(ON_ERROR)}")
        out.append(st)
    return out


def check_set(entries: list, instruments, risk: dict) -> tuple[list, dict]:
    """Validate ``[[strategies]]`` (loaded, params converted for each one's first instrument,
    ownership); returns (identities, the risk table with each strategy's limits merged in as
    ``symbols`` overrides of its instruments). File references are made absolute in place."""
    from livestack.core.risk_config import GLOBAL_RISK_KEYS
    from livestack.strategies.multi import MAX_STRATEGIES

    parsed = parse_set(entries)
    if not 1 <= len(parsed) <= MAX_STRATEGIES:
        raise ValueError(f"[[strategies]]: 1..{MAX_STRATEGIES} strategies per session, got {len(parsed)}")
    by_symbol = {i.symbol: i for i in instruments}
    names = labels(parsed)
    if len(set(names)) != len(names):
        raise ValueError(f"[[strategies]]: labels must differ, got {names}")
    owner: dict = {}
    risk = {**risk, "symbols": {k: dict(v) for k, v in (risk.get("symbols") or {}).items()}}
    idents = []
    for k, st in enumerate(parsed):
        if not st.instruments:
            raise ValueError(f"[[strategies]][{k}] ({st.name}): instruments: at least one symbol")
        for sym in st.instruments:
            if sym not in by_symbol:
                raise ValueError(f"[[strategies]][{k}] ({st.name}): unknown instrument {sym!r} "
                                 f"(configured: {', '.join(by_symbol)})")
            if sym in owner:
                raise ValueError(f"[[strategies]][{k}] ({st.name}): instrument {sym!r} already belongs to "
                                 f"[[strategies]][{owner[sym]}] ({parsed[owner[sym]].name}); one strategy per instrument")
            owner[sym] = k
        bad = sorted(set(st.risk) & set(GLOBAL_RISK_KEYS))
        if bad:
            raise ValueError(f"[[strategies]][{k}] ({st.name}): risk key(s) {bad} are account-wide: set them in [risk]")
        for sym in st.instruments:
            risk["symbols"][sym] = {**risk["symbols"].get(sym, {}), **st.risk}
        entries[k]["name"] = loader.normalize(st.name)
        try:
            s = loader.load(entries[k]["name"], st.params, by_symbol[st.instruments[0]], on_error=st.on_error)
        except loader.StrategyLoadError as e:
            raise ValueError(f"[[strategies]][{k}]: {e}") from None
        idents.append(dict(s.identity, name=names[k], instruments=list(st.instruments), on_error=st.on_error))
    return idents, risk


def build_set(entries: list, instruments):
    """The ``StrategySet`` the core runs for ``[[strategies]]``."""
    from livestack.strategies.multi import StrategySet

    parsed = parse_set(entries)
    index = {i.symbol: n for n, i in enumerate(instruments)}
    by_symbol = {i.symbol: i for i in instruments}
    names = labels(parsed)
    members, owners = [], {}
    for k, st in enumerate(parsed):
        s = loader.load(loader.normalize(st.name), st.params, by_symbol[st.instruments[0]], on_error=st.on_error,
                        name=names[k])
        members.append((s, st.on_error))
        for sym in st.instruments:
            owners[index[sym]] = k
    return StrategySet(members, owners)


def session_identity(cfg: dict, instruments):
    """The session file's ``strategy`` attribute: one identity, or a list for [[strategies]]."""
    if cfg.get("strategies"):
        return check_set([dict(e) for e in cfg["strategies"]], instruments, cfg["risk"])[0]
    ident = identity(cfg["strategy"], instruments)
    if ident.get("ref", "none") == "none":
        return ident
    # one strategy owns every instrument: the same map records summary groups by
    return dict(ident, name=short_name(str(ident.get("ref", ""))), instruments=[i.symbol for i in instruments])
