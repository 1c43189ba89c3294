"""A folder replaced with `atomic_folder` is, at every moment, the old one or the new one:
on Linux the two are exchanged in one step (renameat2), so a reader (or a process killed in
between) never finds the folder missing."""

from __future__ import annotations

import sys

import pytest

from contrastkit.io.atomic import atomic_folder, exchange_paths

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")


@linux
def test_exchange_paths_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "f").write_text("a")
    (b / "f").write_text("b")
    assert exchange_paths(a, b)
    assert (a / "f").read_text() == "b" and (b / "f").read_text() == "a"
    with pytest.raises(FileNotFoundError):
        exchange_paths(a, tmp_path / "missing")


@linux
def test_a_replaced_folder_is_never_missing(tmp_path, monkeypatch):
    """After every rename the replacement makes, the folder is there (a process killed
    between two renames would otherwise leave no folder at all)."""
    import contrastkit.io.atomic as atomic

    target = tmp_path / "index"
    with atomic_folder(target) as tmp:
        (tmp / "version").write_text("0")
    present: list[bool] = []
    real_replace, real_exchange = atomic.os.replace, atomic.exchange_paths

    def replace(src, dst):
        real_replace(src, dst)
        present.append(target.exists())

    def exchange(a, b):
        swapped = real_exchange(a, b)
        present.append(target.exists())
        return swapped

    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(atomic, "exchange_paths", exchange)
    for version in range(1, 4):
        with atomic_folder(target) as tmp:
            (tmp / "version").write_text(str(version))
        assert (target / "version").read_text() == str(version)
    assert present and all(present)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # nothing left behind


def test_leftovers_of_killed_writes_are_removed_by_the_next_write(tmp_path):
    """A write killed with -9 leaves its temporary beside the target; the next write to the
    same path removes those nobody has touched for an hour, and nothing else."""
    import os
    import time

    from contrastkit.io.atomic import STALE_AFTER_S, atomic_file

    target = tmp_path / "index"
    old = time.time() - STALE_AFTER_S - 60

    def leftover(name: str, folder: bool, touched: float):
        path = tmp_path / name
        if folder:
            path.mkdir()
            (path / "vectors.npy").write_bytes(b"half")
            os.utime(path / "vectors.npy", (touched, touched))
        else:
            path.write_bytes(b"half")
        os.utime(path, (touched, touched))
        return path

    stale = [leftover(".index.k1.tmp", True, old), leftover(".index.old.k2.tmp", True, old)]
    busy = leftover(".index.busy.tmp", True, old)
    os.utime(busy / "vectors.npy")  # a write in progress: its file was just written
    kept = [
        busy,
        leftover(".index.new.tmp", True, time.time()),
        leftover(".index2.x.tmp", True, old),
    ]
    kept.append(leftover(".metrics.json.x.tmp", False, old))
    with atomic_folder(target) as tmp:
        (tmp / "version").write_text("1")
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    with atomic_file(tmp_path / "metrics.json") as tmp:
        tmp.write_text("{}")
    assert not kept[-1].exists() and (tmp_path / "metrics.json").read_text() == "{}"
