"""The one schema declaration agrees with every view derived from it."""

import ctypes
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from livestack.schema import DTYPES, HEADER, RecordKind, new, spec
from livestack.schema import gen

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_generated_files_are_up_to_date():
    assert gen.write_all(check=True) == [], "run: python -m livestack.schema.gen"


def test_generated_files_say_they_are_generated():
    assert "GENERATED" in gen.C_HEADER.read_text().splitlines()[0]
    assert "GENERATED" in gen.PXD.read_text().splitlines()[0]


@pytest.mark.parametrize("rec", spec.RECORDS, ids=lambda r: r.name)
def test_every_record_is_a_64_or_128_byte_slot_with_the_common_header(rec):
    dt = DTYPES[rec.name]
    assert dt.itemsize == rec.size in (64, 128)
    for name in HEADER.names:
        assert dt.fields[name][1] == HEADER.fields[name][1]
    for name in dt.names:
        ftype, off = dt.fields[name][:2]
        assert off % ftype.base.itemsize == 0, f"{rec.name}.{name} misaligned"


def _c_layout(tmp_path):
    """Compile a C program against cext/ls_records.h that prints sizeof/offsetof of every field."""
    lines = ['#include <stdio.h>', '#include "ls_records.h"', "int main(void) {"]
    for rec in spec.RECORDS:
        t = f"ls_{rec.name.lower()}_t"
        lines.append(f'printf("{rec.name} sizeof %zu\\n", sizeof({t}));')
        for f, _ in spec.layout(rec):
            lines.append(f'printf("{rec.name} {f.name} %zu\\n", offsetof({t}, {f.name}));')
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-Wall", "-Werror", "-I", str(ROOT / "cext"), str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        name, field, value = line.split()
        res[(name, field)] = int(value)
    return res


def test_c_structs_match_numpy_dtypes_for_every_record(tmp_path):
    c = _c_layout(tmp_path)
    for rec in spec.RECORDS:
        dt = DTYPES[rec.name]
        assert c[(rec.name, "sizeof")] == dt.itemsize, rec.name
        for name in dt.names:
            assert c[(rec.name, name)] == dt.fields[name][1], f"{rec.name}.{name}"


def test_cython_declarations_cover_every_field():
    pxd = gen.PXD.read_text()
    for rec in spec.RECORDS:
        block = pxd.split(f"ctypedef struct ls_{rec.name.lower()}_t:")[1].split("ctypedef")[0]
        for name in DTYPES[rec.name].names:
            assert f" {name}" in block, f"{rec.name}.{name} missing in records.pxd"


def test_enum_values_are_unique_within_each_enum():
    for e in spec.ENUMS:
        values = [v for _, v, _ in e.members]
        assert len(values) == len(set(values)), e.name


def test_record_kind_enum_and_records_agree():
    assert {r.name: r.kind for r in spec.RECORDS} == {m.name: m.value for m in RecordKind}


def test_new_fills_kind_and_version():
    a = new("EXEC", 3, price=5)
    assert (a["kind"] == RecordKind.EXEC).all() and (a["version"] == spec.RECORDS_BY_NAME["EXEC"].version).all() \
        and (a["price"] == 5).all()


def test_a_layout_that_does_not_fill_its_slot_is_refused():
    bad = spec.Record(99, "BAD", 64, "bad", (spec.Field("x", "i64", "", ""),))
    with pytest.raises(ValueError, match="slot is 64"):
        spec.layout(bad)


def test_a_misaligned_field_is_refused():
    bad = spec.Record(99, "BAD", 64, "bad", (spec.Field("a", "u8", "", ""), spec.Field("x", "i64", "", "")))
    with pytest.raises(ValueError, match="not aligned"):
        spec.layout(bad)
