"""Load a strategy by reference: a registry name (``mm_cy`` ...), ``package.module:Class`` or
``path/to/file.py:Class`` (``.pyx``: Cython, compiled on first use into a cache directory).

=================================  ===============================================================
the object named                   flavour
=================================  ===============================================================
subclass of ``sdk.Strategy`` (or   Python: ``PyStrategy(PyHooks(Class(params)))``; or any object
any class with ``on_event(w)``)    with ``on_event(w)`` (the raw block, the legacy form)
subclass of ``sdk.NumbaStrategy``  numba: hooks compiled into one ``@cfunc`` (``numba_sdk.build``)
a numba ``@cfunc`` object          numba, legacy: ``CfuncStrategy`` (no params)
subclass of the Cython             Cython: instantiated; ``SdkStrategy`` subclasses get the hooks
``core.strategy.Strategy``
=================================  ===============================================================

Identity (goes into the session file's ``strategy`` attribute, checked by ``replay``):
``{"ref", "module", "path", "sha256", "params", "flavour"}`` — sha256 of the source file
(the ``.py``/``.pyx``; for a compiled module without source, its shared object).

Every failure is a :class:`StrategyLoadError` with the reason, raised before any process starts.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import pathlib
import sys
import threading

log = logging.getLogger(__name__)

ROOT = pathlib.Path(__file__).resolve().parents[2]


class StrategyLoadError(ValueError):
    """The strategy reference cannot be resolved, compiled, instantiated or given its params."""


def report_error(strategy, exc) -> None:
    """A strategy raised: a log line for the first error, then at each power of two (a strategy
    failing on every event must not flood the log; the ANOMALY records count every one)."""
    n = strategy.errors
    if n & (n - 1) == 0:
        log.error("strategy %s raised %s: %s (error #%d; on_error applies)", strategy.name, type(exc).__name__,
                  exc, n)


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_reference(name: str) -> bool:
    """True for ``mod:Class`` / ``file.py:Class`` references (else a registry name)."""
    return ":" in name


def normalize(ref: str) -> str:
    """A file reference made absolute (every process and a later replay resolve the same file)."""
    if not is_reference(ref):
        return ref
    target, _, attr = ref.rpartition(":")
    if target.endswith((".py", ".pyx")):
        return f"{os.path.abspath(os.path.expanduser(target))}:{attr}"
    return ref


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LIVESTACK_STRATEGY_CACHE")
                        or pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
                        / "livestack" / "strategies")


_ABI_FILES = ("livestack/core/strategy.pxd", "livestack/core/ctx.pxd", "cext/ls_ctx_words.h", "cext/ls_core.h",
              "livestack/strategies/cysdk.pxd")
_lock = threading.Lock()


def build_pyx(path) -> pathlib.Path:
    """Compile a Cython strategy ``.pyx`` into the cache (key: its source and the SDK's ABI files);
    returns the shared object. Reused when nothing changed."""
    path = pathlib.Path(path).resolve()
    if not path.is_file():
        raise StrategyLoadError(f"{path}: no such file")
    stem = path.stem
    if not stem.isidentifier():
        raise StrategyLoadError(f"{path}: a Cython module name must be an identifier")
    h = hashlib.sha256(path.read_bytes())
    for rel in _ABI_FILES:
        p = ROOT / rel
        if p.exists():
            h.update(p.read_bytes())
    out = cache_dir() / f"{stem}-{h.hexdigest()[:20]}"
    found = sorted(out.glob(f"{stem}.*.so")) if out.exists() else []
    if found:
        return found[0]
    with _lock:
        return _compile(path, stem, out)


def _compile(path, stem, out) -> pathlib.Path:
    import shutil
    import tempfile

    import numpy
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=out.parent))
    try:
        src = tmp / f"{stem}.pyx"
        shutil.copyfile(path, src)
        ext = Extension(stem, [str(src)], include_dirs=[str(ROOT / "cext"), numpy.get_include()],
                        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                        extra_compile_args=["-O3", "-Wno-unused-function", "-Wno-unreachable-code"])
        directives = {"language_level": 3, "boundscheck": False, "wraparound": False,
                      "initializedcheck": False, "cdivision": True}
        try:
            exts = cythonize([ext], compiler_directives=directives, include_path=[str(ROOT)], quiet=True,
                             build_dir=str(tmp / "c"))
            dist = Distribution({"ext_modules": exts, "script_name": "livestack-build-strategy"})
            cmd = build_ext(dist)
            cmd.build_lib = str(tmp)
            cmd.build_temp = str(tmp / "build")
            cmd.ensure_finalized()
            cmd.run()
        except BaseException as e:  # Cython raises CompileError; the C compiler SystemExit/DistutilsError
            raise StrategyLoadError(f"{path}: Cython build failed: {type(e).__name__}: {e}") from None
        so = sorted(tmp.glob(f"{stem}.*.so"))
        if not so:
            raise StrategyLoadError(f"{path}: Cython build produced no shared object")
        try:
            tmp.rename(out)
        except OSError:  # another process built it first
            pass
        found = sorted(out.glob(f"{stem}.*.so"))
        log.info("built Cython strategy %s -> %s", path, found[0])
        return found[0]
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _import_file(path: pathlib.Path):
    """Import a .py / compiled .so strategy file under a name unique to its content."""
    digest = sha256_file(path)[:12]
    if path.suffix == ".py":
        name = f"livestack_user_{path.stem}_{digest}"
    else:
        name = path.name.split(".")[0]  # an extension module must keep the name it was built with
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{path}: cannot be imported")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    parent = str(path.parent)
    sys.path.insert(0, parent)  # sibling modules of the strategy file import as usual
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        try:
            sys.path.remove(parent)
        except ValueError:
            pass
    return mod


def resolve(ref: str):
    """(the object named by ``ref``, identity without params) — imports/compiles, instantiates nothing."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise StrategyLoadError(f"strategy {ref!r}: expected 'package.module:Class' or 'path/file.py:Class'")
    try:
        if target.endswith((".py", ".pyx")):
            path = pathlib.Path(target).expanduser().resolve()
            if not path.is_file():
                raise StrategyLoadError(f"strategy {ref!r}: {path}: no such file")
            mod = _import_file(build_pyx(path) if path.suffix == ".pyx" else path)
            source = path
        else:
            mod = importlib.import_module(target)
            f = pathlib.Path(getattr(mod, "__file__", "") or "")
            pyx = f.with_name(f.name.split(".")[0] + ".pyx")
            source = pyx if pyx.is_file() else f
    except StrategyLoadError:
        raise
    except BaseException as e:
        raise StrategyLoadError(f"strategy {ref!r}: import failed: {type(e).__name__}: {e}") from None
    obj = getattr(mod, attr, None)
    if obj is None:
        raise StrategyLoadError(f"strategy {ref!r}: {target} has no attribute {attr!r}")
    ident = {"ref": ref, "module": getattr(mod, "__name__", target),
             "path": str(source) if source and str(source) != "." else "",
             "sha256": sha256_file(source) if source and pathlib.Path(source).is_file() else ""}
    return obj, ident


_built: dict = {}   # NumbaStrategy class -> its compiled cfunc (one compile per process)


def _instantiate(ref, obj, params, instrument, name):
    from livestack.core.strategy import CfuncStrategy, PyStrategy
    from livestack.core.strategy import Strategy as CyStrategy
    from livestack.strategies import params as P
    from livestack.strategies import sdk

    name = name or ref
    if isinstance(obj, type) and issubclass(obj, CyStrategy):
        names, words, typed = P.convert(name, getattr(obj, "Params", None), params, instrument)
        try:
            s = obj()
        except TypeError:
            s = obj(name)
        if getattr(obj, "Params", None) is not None or not s.param_names:
            s.configure(name=name, param_names=names, param_defaults=words)
        elif params:
            from livestack.strategies import with_params

            with_params(s, params)
        pol = getattr(obj, "on_error", None)  # on a cdef class: the instance attribute's descriptor
        s.configure(name=name, on_error=pol if isinstance(pol, str) else "disable")
        s.typed_params = typed
        return s, "cython"
    if isinstance(obj, type) and issubclass(obj, sdk.NumbaStrategy):
        from livestack.strategies import numba_sdk

        names, words, typed = P.convert(name, obj.Params, params, instrument)
        try:
            cf = _built.get(obj) or _built.setdefault(obj, numba_sdk.build(obj))
        except BaseException as e:
            raise StrategyLoadError(f"strategy {name!r}: numba compile failed: {type(e).__name__}: {e}") from None
        s = CfuncStrategy(cf, name, names, words)
        s.configure(on_error=getattr(obj, "on_error", "disable"))   # applies to error(w, code)
        s.stop_hook = True
        s.typed_params = typed
        return s, "numba"
    if hasattr(obj, "address") and hasattr(obj, "native_name"):
        if params:
            raise StrategyLoadError(f"strategy {name!r}: a bare cfunc takes no params (use NumbaStrategy)")
        return CfuncStrategy(obj, name), "numba"
    if isinstance(obj, type) and issubclass(obj, sdk.Strategy):
        names, words, typed = P.convert(name, obj.Params, params, instrument)
        impl = obj(typed)
        s = PyStrategy(sdk.PyHooks(impl), name, names, words)
        s.configure(on_error=getattr(obj, "on_error", "disable"))
        s.stop_hook = True
        s.typed_params = typed
        return s, "python"
    if isinstance(obj, type) and callable(getattr(obj, "on_event", None)):
        impl = obj()
        s = PyStrategy(impl, name, getattr(impl, "param_names", ()), getattr(impl, "param_defaults", ()))
        if params:
            from livestack.strategies import with_params

            with_params(s, params)
        return s, "python"
    raise StrategyLoadError(f"strategy {ref!r}: {obj!r} is not a strategy (subclass livestack.strategies.sdk."
                            "Strategy / NumbaStrategy or livestack.core.strategy.SdkStrategy)")


def load(ref: str, params: dict | None = None, instrument=None, *, name: str | None = None, on_error=None):
    """The ready :class:`livestack.core.strategy.Strategy` for ``ref`` (registry name or reference),
    params validated and converted for ``instrument``; ``strategy.identity`` set. ``"none"``: None."""
    from livestack import strategies
    from livestack.strategies.params import ParamError

    if not is_reference(ref):
        try:
            s = strategies.get(ref, params or None)
        except ValueError as e:
            raise StrategyLoadError(str(e)) from None
        if s is None:
            return None
        ident = {"ref": ref, "module": "livestack.strategies", "path": "", "sha256": "", "flavour": ""}
    else:
        obj, ident = resolve(ref)
        try:
            s, flavour = _instantiate(ref, obj, params, instrument, name)
        except (ParamError, StrategyLoadError) as e:
            raise StrategyLoadError(str(e)) from None
        except BaseException as e:
            raise StrategyLoadError(f"strategy {ref!r}: could not be instantiated: {type(e).__name__}: {e}") from None
        ident["flavour"] = flavour
    if name is not None and s is not None:
        s.configure(name=name)
    if on_error is not None:
        try:
            s.configure(on_error=on_error)
        except ValueError as e:
            raise StrategyLoadError(str(e)) from None
    if hasattr(s, "reporter"):
        s.reporter = report_error
    ident["params"] = {k: (str(v) if not isinstance(v, (int, float, bool, str)) else v)
                       for k, v in (params or {}).items()}
    s.identity = ident
    return s
