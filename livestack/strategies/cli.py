"""``livestack new-strategy NAME [--flavour py|numba|cython] [--dir DIR]`` and
``livestack build-strategy FILE.pyx``."""

from __future__ import annotations

import pathlib
import re
import sys

TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"
EXT = {"py": ".py", "numba": ".py", "cython": ".pyx"}


def register(subparsers) -> None:
    p = subparsers.add_parser("new-strategy", help="write a strategy module, its backtest config and a test")
    p.add_argument("name", help="strategy name (a Python identifier, e.g. join_bid)")
    p.add_argument("--flavour", choices=list(EXT), default="py")
    p.add_argument("--dir", default=".", help="where to write the files (default: here)")
    p.set_defaults(func=_cmd_new)
    b = subparsers.add_parser("build-strategy", help="compile a Cython strategy (.pyx) into the strategy cache now")
    b.add_argument("file")
    b.set_defaults(func=_cmd_build)


def scaffold(name: str, flavour: str = "py", directory=".") -> dict:
    """Write ``<name>.py|.pyx``, ``<name>.toml`` and ``test_<name>.py`` in ``directory``; returns
    their paths and the strategy reference. Refuses to overwrite."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"strategy name {name!r}: letters, digits and '_', not starting with a digit")
    if flavour not in EXT:
        raise ValueError(f"flavour {flavour!r}: expected one of {', '.join(EXT)}")
    d = pathlib.Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    cls = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Strategy"
    mod = d / f"{name}{EXT[flavour]}"
    test = d / f"test_{name}.py"
    toml = d / f"{name}.toml"
    for p in (mod, test, toml):
        if p.exists():
            raise FileExistsError(f"{p} exists; not overwriting")
    fmt = {"name": name, "cls": cls, "stem": name, "file": mod.name, "path": mod.name}
    mod.write_text((TEMPLATES / f"{'py' if flavour == 'py' else flavour}.tmpl").read_text().format(**fmt))
    test.write_text((TEMPLATES / "test.tmpl").read_text().format(**fmt))
    toml.write_text(f'# backtest config: livestack backtest --data CAPTURE.gz --strategy {mod.name}:{cls} --config {toml.name}\n'
                    '[strategy]\non_error = "disable"\n\n[strategy.params]\nqty = "0.001"\nhalf_spread = "0"\n')
    return {"module": str(mod), "test": str(test), "config": str(toml), "ref": f"{mod}:{cls}", "class": cls}


def _cmd_new(args) -> int:
    try:
        out = scaffold(args.name, args.flavour, args.dir)
    except (ValueError, OSError) as e:
        print(f"livestack new-strategy: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out['module']}\n      {out['config']}\n      {out['test']}")
    print(f"backtest: livestack backtest --data $LIVESTACK_DATA/binance/usdm-btcusdt-20240808.gz "
          f"--strategy {out['ref']} --config {out['config']}")
    print(f"test:     pytest {out['test']}")
    return 0


def _cmd_build(args) -> int:
    from livestack.strategies import loader

    try:
        so = loader.build_pyx(args.file)
    except loader.StrategyLoadError as e:
        print(f"livestack build-strategy: {e}", file=sys.stderr)
        return 2
    print(f"built {so}")
    return 0
