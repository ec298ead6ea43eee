"""A pickle reader that refuses every global: plain data (the refer toolkit's `refs(*).p`) only.

A pickle is a program: opcodes such as GLOBAL / STACK_GLOBAL name a callable and REDUCE calls it,
so `pickle.load` on a downloaded file can run anything. Checking the result afterwards is too
late. The refs files of RefCOCO / RefCOCO+ / RefCOCOg hold only lists, dicts, strings and numbers,
none of which needs a global, so this unpickler's `find_class` refuses every lookup (also those
of the copyreg extension opcodes, which go through `find_class` too) and no persistent ids or
out-of-band buffers are accepted. Whatever would have been built from a global is never built.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO


class UnsafePickleError(ValueError):
    """The pickle asked for something other than plain data (a class, a function)."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f"refused to load {module}.{name}: this file may only hold plain data "
            "(lists, dicts, strings, numbers)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id: this file may only hold plain data")


def load_plain(stream: BinaryIO) -> Any:
    """Unpickle plain data from an open binary stream; `UnsafePickleError` for anything else.

    Python 2 byte strings (the refer files were written by Python 2) are decoded as UTF-8.

    Raises:
        UnsafePickleError: the pickle names a global or a persistent id.
        ValueError: the stream is not a readable pickle (the message says why).
    """
    try:
        return _PlainDataUnpickler(stream, encoding="utf-8").load()
    except UnsafePickleError:
        raise
    except Exception as error:  # a corrupt pickle can fail in many ways; all mean unreadable
        raise ValueError(f"not a readable pickle: {error}") from error


def load_plain_file(path: str | Path) -> Any:
    """`load_plain` on a file; the messages name the file."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            return load_plain(stream)
    except ValueError as error:
        kind = type(error) if isinstance(error, UnsafePickleError) else ValueError
        raise kind(f"{path}: {error}") from error


def loads_plain(data: bytes) -> Any:
    """`load_plain` on bytes."""
    return load_plain(io.BytesIO(data))
