"""The context word indices are declared once (livestack/schema/ctx_spec.py): the generated C
header, Cython view and Python constants are up to date and agree with the compiled values."""

from __future__ import annotations

import re

from livestack.core import ctx
from livestack.schema import ctx_spec, ctxgen


def test_generated_context_files_are_up_to_date():
    assert ctxgen.write_all(check=True) == [], "run python -m livestack.schema.ctxgen (the build does)"


def test_compiled_values_equal_the_declaration():
    for _, rows in ctx_spec.layout():
        for name, value, _ in rows:
            assert getattr(ctx, name) == value, name
    for name, value, _ in ctx_spec.CONSTANTS:
        assert getattr(ctx, name) == value
    assert ctx.NAMES == tuple(n for _, rows in ctx_spec.layout() for n, _, _ in rows) + \
        tuple(n for n, _, _ in ctx_spec.CONSTANTS)


def test_no_hand_written_word_index_is_left_in_the_core_header():
    text = (ctxgen.ROOT / "cext" / "ls_core.h").read_text()
    assert not re.search(r"^\s*LS_(CTX|INST|ORD|INTENT)_\w+\s*[=,]", text, re.M)
    assert '#include "ls_ctx_words.h"' in text


def test_named_views_cover_every_word_of_each_block_at_its_index():
    for py, prefix, size in (("HDR", "CTX", "CTX_HDR_WORDS"), ("INST", "INST", "INST_FIXED_WORDS"),
                             ("ORD", "ORD", "ORD_WORDS"), ("INTENT", "INTENT", "INTENT_WORDS")):
        dt, fields = getattr(ctx, f"{py}_DTYPE"), getattr(ctx, f"{py}_FIELDS")
        assert dt.itemsize == 8 * getattr(ctx, size), py
        for name, word in fields.items():
            assert dt.fields[name][1] == 8 * word, (py, name)
            assert getattr(ctx, f"{prefix}_{name.upper()}") == word, (py, name)
    text = (ctxgen.ROOT / "cext" / "ls_ctx_words.h").read_text()
    assert "_Static_assert(sizeof(ls_ctx_inst_t) == 8 * LS_INST_FIXED_WORDS" in text
