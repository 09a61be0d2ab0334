"""Build the corpus stage's C extensions (everything else is declared in pyproject.toml).

They are plain CPython C API modules with no dependency beyond a C11 compiler; each one has a
pure-Python/Rust reference it is tested against for identical output (see tests/test_native_*.py).
"""

from setuptools import Extension, setup

NATIVE = "obert_lib/corpus/native"
MODULES = ("segmenter", "wordpiece", "textscan", "spans", "minhash")

setup(
    ext_modules=[
        Extension(
            f"obert_lib.corpus._{name}",
            [f"{NATIVE}/{name}.c"],
            depends=[f"{NATIVE}/huge_alloc.h"],
            # -O3 for minhash: its permutation loop is vectorised only at -O3 (see native/minhash.c)
            extra_compile_args=["-O3" if name == "minhash" else "-O2", "-std=c11", "-Wall"],
        )
        for name in MODULES
    ]
)
