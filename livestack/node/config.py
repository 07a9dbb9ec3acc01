"""The stack's TOML configuration: loading and validation with clear errors, before any process starts.

The schema -- every table and option, its type, range and default -- is the msgspec Structs of
``livestack.node.schema`` (feed and venue options: the Struct each kind registers there). Every
problem is reported, each once, with its TOML path: an unknown key (with "did you mean"), a wrong
type, a value out of range (ports, CPUs, capacities that are not powers of two), a file that does
not exist, an unknown strategy or strategy parameter, an invalid risk table, unsafe control
endpoints. ``livestack config check|show``, ``run``, ``backtest`` and ``replay`` use :func:`load`.

The result is a plain dict (every process takes it as such): the full config with defaults.
With no file, ``DEFAULTS`` is the embedded default: the simulated market and exchange with the
example market maker, no network and no files.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from typing import Any

import msgspec

from livestack.config import Instrument
from livestack.node import markets
from livestack.node import schema as S


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range.

    ``errors``: one message per problem, each naming its TOML path; ``str()`` lists them all."""

    def __init__(self, errors: str | list[str]):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        strip = [e.removeprefix("config: ") for e in self.errors]
        if len(strip) == 1:
            text = f"config: {strip[0]}"
        else:
            text = f"config: {len(strip)} problems:\n" + "\n".join(f"  - {e}" for e in strip)
        super().__init__(text)


#: The embedded default config (``livestack config show`` with no file).
DEFAULTS: dict[str, Any] = msgspec.to_builtins(S.Config())


def validate(raw: dict | None) -> dict:
    """Merge ``raw`` over the defaults and validate everything; returns the full configuration.
    Raises ConfigError listing every problem found."""
    errors: list[str] = []
    raw = copy.deepcopy(raw or {})
    cfg_obj = S.convert(raw, S.Config, "", errors)
    if cfg_obj is S.BAD:
        _late_checks(raw, errors)  # kinds, strategy, control: reported too when the tables parsed
        raise ConfigError(errors)
    cfg = msgspec.to_builtins(cfg_obj)
    cfg["risk"] = {**S.RISK_DEFAULTS, **raw.get("risk", {})}
    if cfg["strategies"] and "strategy" in raw:
        errors.append("give [strategy] or [[strategies]], not both")
    _late_checks(cfg, errors, full=True)
    if not errors:
        markets.normalize(raw, cfg, errors)
    if not errors:
        _check_strategies_sdk(cfg, errors)
    if errors:
        raise ConfigError(errors)
    if cfg["cpu"]["harness"] == -1:
        cfg["cpu"]["harness"] = (os.cpu_count() or 1) - 1
    return cfg


def _late_checks(cfg: dict, errors: list[str], full: bool = False) -> None:
    """Checks that need more than one table, or another module: kinds' options, the strategy and
    its params, control endpoints/keys, risk. On a raw (invalid) config, only what parsed."""
    for section, tab, registry in markets.kind_tables(cfg):
        kind = tab.get("kind", "sim")
        if not isinstance(kind, str):
            continue
        what = "feed" if registry is S.FEED_KINDS else "venue"
        if kind not in registry:
            hint = (" (to replay a capture, use venue.kind = 'sim' with venue.options.market = 'capture')"
                    if what == "feed" else "")
            errors.append(f"'{section}.kind' = {kind!r}: unknown {what} kind ({S.did_you_mean(kind, registry)}"
                          f"known: {', '.join(registry)}){hint}")
            continue
        opts = tab.get("options", {})
        if isinstance(opts, dict):
            obj = S.convert(opts, S.options_struct(registry, kind), f"{section}.options", errors)
            if obj is not S.BAD and full:
                tab["options"] = msgspec.to_builtins(obj)
    st = cfg.get("strategy")
    if isinstance(st, dict) and isinstance(st.get("name", "mm_cy"), str) and ":" not in st.get("name", "mm_cy"):
        _check_strategy(st.get("name", "mm_cy"), st.get("params") or {}, errors)  # references: the SDK's check
    ctl = cfg.get("control")
    if full:
        _check_control(ctl, errors)
        if not errors:
            _check_risk(cfg, errors)


def _check_strategies_sdk(cfg: dict, errors: list[str]) -> None:
    """The strategy (or each of ``[[strategies]]``) loads -- imported or compiled, typed params
    converted to the instrument's fixed point -- before any process starts (the Strategy SDK's
    checks, ``livestack.strategies.config``). ``[[strategies]]`` merges each one's risk limits
    into ``[risk]`` and runs instead of ``[strategy]``."""
    try:
        from livestack.strategies import config as strategy_config
    except ImportError:  # strategies not built: the harness reports it at start
        return
    insts = instruments(cfg)
    if cfg["strategies"]:
        try:
            cfg["risk"] = strategy_config.check_set(cfg["strategies"], insts, cfg["risk"])[1]
        except ValueError as e:
            errors.append(str(e).removeprefix("config: "))
            return
        cfg["strategy"] = {"name": "none", "params": {}, "on_error": "disable"}  # [[strategies]] runs instead
        return
    try:
        strategy_config.check(cfg["strategy"], insts)
    except ValueError as e:
        errors.append(f"[strategy]: {e}")


def _check_strategy(name: str, params, errors: list[str]) -> None:
    """The strategy is one the harness can load and its params are ones it takes (else the harness
    would die at start, after the other processes started)."""
    try:
        from livestack.strategies import NAMES
    except ImportError:  # strategies not built: the harness reports it at start
        return
    if name not in NAMES:
        import difflib

        near = difflib.get_close_matches(name, NAMES, n=1)
        errors.append(f"'strategy.name' = {name!r}: unknown strategy" + (f" (did you mean {near[0]!r}?)" if near else "")
                      + f"; known: {', '.join(NAMES)}, or your own as package.module:Class or "
                        "path/file.py|.pyx:Class (docs/strategies.md)")
        return
    if not isinstance(params, dict) or not params:
        return
    names = strategy_param_names(name)
    if names is None:
        return
    for key, value in params.items():
        if key not in names:
            errors.append(f"unknown key 'strategy.params.{key}' for strategy {name!r} "
                          f"({S.did_you_mean(key, names)}known: {', '.join(names)})")
        elif isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"'strategy.params.{key}' must be int, got {S._type_name(value)} {value!r}")


def strategy_param_names(name: str) -> tuple[str, ...] | None:
    """The parameter names strategy ``name`` takes (None: unknown here; the harness checks)."""
    if name == "none":
        return ()
    try:
        import livestack.strategies as strategies

        spec = getattr(strategies, "param_names", None)  # a registry that knows (user strategies)
        if spec is not None:
            return tuple(spec(name))
        from livestack.strategies import kernels as K
    except Exception:  # noqa: BLE001 -- numba or a build missing: the harness reports it at start
        return None
    if name.startswith("mm_"):
        return tuple(K.MM_PARAM_NAMES)
    if name.startswith("taker_"):
        return tuple(K.TAKER_PARAM_NAMES)
    return None


def _check_control(ctl: dict, errors: list[str]) -> None:
    """The control endpoints and CURVE keys can be served safely; key paths are made absolute so
    every process reads the same files."""
    if isinstance(ctl["curve_authorized_keys"], str):
        ctl["curve_authorized_keys"] = [ctl["curve_authorized_keys"]]
    if ctl["curve_secret_key"]:
        if re.fullmatch(r"\S{40}", ctl["curve_secret_key"]) and not os.path.exists(ctl["curve_secret_key"]):
            errors.append("'control.curve_secret_key' looks like a key: give the PATH of the secret "
                          "certificate (`livestack ctl keygen`), never the key itself, in a config file")
            return
        ctl["curve_secret_key"] = os.path.abspath(os.path.expanduser(ctl["curve_secret_key"]))
    ctl["curve_authorized_keys"] = [os.path.abspath(os.path.expanduser(p)) for p in ctl["curve_authorized_keys"]]
    for i, p in enumerate(ctl["curve_authorized_keys"]):
        if not os.path.exists(p):
            errors.append(f"'control.curve_authorized_keys[{i}]' = {p!r}: no such file or directory")
    if ctl["curve_secret_key"] and not os.path.exists(ctl["curve_secret_key"]):
        errors.append(f"'control.curve_secret_key' = {ctl['curve_secret_key']!r}: no such file")
    if errors or not ctl["enabled"]:
        return
    from livestack.control import auth

    try:
        auth.check_options(ctl)
    except ValueError as e:
        errors.append(f"[control]: {e}")


def _check_risk(cfg: dict, errors: list[str]) -> None:
    try:
        from livestack.core import parse_risk
    except ImportError:  # core not built: checked again when the harness builds the core
        return
    try:
        parse_risk(cfg["risk"], instruments(cfg), 64)
    except ValueError as e:
        errors.append(f"[risk]: {e}")


def instruments(cfg: dict) -> list[Instrument]:
    """The configured instruments as Instrument objects (validated: types, unique ids and symbols)."""
    items = cfg["instruments"]
    errors: list[str] = []
    got = S.convert(items, S.Instruments, "instruments", errors)
    if got is S.BAD:
        raise ConfigError(errors)
    out, ids, symbols = [], set(), set()
    for i, item in enumerate(got):
        inst = Instrument(**msgspec.structs.asdict(item))
        if inst.id in ids or (inst.feed, inst.symbol) in symbols:  # one symbol on two feeds: spot + USD-M
            raise ConfigError(f"'instruments[{i}]': duplicate id or symbol {inst.id}/{inst.symbol}")
        ids.add(inst.id)
        symbols.add((inst.feed, inst.symbol))
        out.append(inst)
    return out


def read_toml(path: str) -> dict:
    """The raw TOML of ``path`` (ConfigError when missing or invalid)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None


def load(path: str | None) -> dict:
    """Load and validate a TOML file (None: the embedded default)."""
    if path is None:
        return validate({})
    return validate(read_toml(path))
