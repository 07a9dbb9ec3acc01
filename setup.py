"""Build of the Cython extensions against the C headers in cext/.

Before cythonizing, the record layouts are regenerated from livestack/schema/spec.py (the files
are only rewritten when their content changes, so an unchanged tree does not rebuild).

Environment:
  LIVESTACK_DEBUG=1   bounds/wraparound checks on, -O0 -g (for debugging the Cython code)
  LIVESTACK_EXT=pat   build only extensions whose module name contains pat (comma-separated)
"""

import glob
import importlib.util
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEBUG = os.environ.get("LIVESTACK_DEBUG") == "1"


def _load(name, rel):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def generate_layouts():
    schema_spec = _load("_livestack_schema_spec", "livestack/schema/spec.py")
    gen = _load("_livestack_schema_gen", "livestack/schema/gen.py")
    gen.write_all(schema_spec)
    ctx_spec = _load("_livestack_ctx_spec", "livestack/schema/ctx_spec.py")
    ctxgen = _load("_livestack_ctxgen", "livestack/schema/ctxgen.py")
    ctxgen.write_all(ctx_spec)


def extensions():
    headers = sorted(glob.glob(os.path.join("cext", "*.h")))
    only = [p for p in os.environ.get("LIVESTACK_EXT", "").split(",") if p]
    cflags = ["-O0", "-g"] if DEBUG else ["-O3"]
    cflags += ["-Wall", "-Werror", "-Wno-unused-function", "-Wno-unreachable-code", "-Wno-unused-variable",
               "-Wno-unused-but-set-variable"]
    exts = []
    for path in sorted(glob.glob("livestack/**/*.pyx", recursive=True)):
        mod = path[:-4].replace(os.sep, ".")
        if only and not any(p in mod for p in only):
            continue
        if mod.endswith("_picows_binance") and importlib.util.find_spec("picows") is None:
            # cimports picows.pxd; without picows at build time the feed uses its Python listener
            print(f"setup.py: picows not installed, skipping {mod}", file=sys.stderr)
            continue
        exts.append(Extension(
            mod, [path],
            include_dirs=["cext", numpy.get_include()],
            depends=headers,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=cflags,
        ))
    return exts


generate_layouts()

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

setup(
    ext_modules=cythonize(extensions(), compiler_directives=directives, nthreads=0, quiet=True),
)
