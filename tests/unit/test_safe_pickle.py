"""The restricted unpickler reads plain data and refuses every global before anything runs."""

from __future__ import annotations

import copyreg
import os
import pickle
from pathlib import Path

import pytest

from laser_core.bench.safe_pickle import UnsafePickleError, load_plain_file, loads_plain


class _MakesADirectory:
    """Unpickling this with plain `pickle.loads` would call os.mkdir(target)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.target),))


class _Extension:
    pass


_CODE = 0x7FFF0001  # a copyreg extension code nobody else uses (pickled as EXT4)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_global_is_refused_before_it_runs(tmp_path: Path, protocol: int) -> None:
    target = tmp_path / "made"
    data = pickle.dumps([{"ok": 1}, _MakesADirectory(target)], protocol=protocol)
    with pytest.raises(UnsafePickleError, match="mkdir"):
        loads_plain(data)
    assert not target.exists()


def test_an_extension_code_is_refused_too() -> None:
    copyreg.add_extension(__name__, "_Extension", _CODE)
    try:
        data = pickle.dumps(_Extension(), protocol=2)
        assert pickle.EXT4 in data  # the copyreg opcode, not GLOBAL
        with pytest.raises(UnsafePickleError, match="_Extension"):
            loads_plain(data)
    finally:
        copyreg.remove_extension(__name__, "_Extension", _CODE)


def test_plain_data_loads_with_python2_strings_as_utf8(tmp_path: Path) -> None:
    refs = [{"ref_id": 1, "split": "val", "sentences": [{"sent_id": 7, "sent": "café"}]}]
    assert loads_plain(pickle.dumps(refs, protocol=2)) == refs
    # Python 2's pickle.dump(["café"], f, 2) wrote a byte string (SHORT_BINSTRING) of UTF-8.
    assert loads_plain(b"\x80\x02]q\x00U\x05caf\xc3\xa9a.") == ["café"]
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps(refs, protocol=0))
    assert load_plain_file(path) == refs


def test_a_corrupt_pickle_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"a": 1}], protocol=2)[:-3])
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: not a readable pickle"):
        load_plain_file(path)
    path.write_bytes(pickle.dumps(_MakesADirectory(tmp_path / "x"), protocol=2))
    with pytest.raises(UnsafePickleError, match=r"refs\(unc\)\.p: refused"):
        load_plain_file(path)
