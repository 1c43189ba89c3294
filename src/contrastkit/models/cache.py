"""On-disk cache of base embeddings, keyed by the model's weights and the exact input texts.

Adapter mode computes the frozen model's embeddings once; a second run on the same data
(a resumed run, another method, the test set's "before" metrics) reads them back.
Files are plain .npy (loaded with allow_pickle=False), written atomically.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from contrastkit.io.atomic import write_bytes_atomic


def cache_dir() -> Path:
    root = os.environ.get("CONTRASTKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "contrastkit"
    )
    return Path(root) / "embeddings"


_MODEL_FILE_SUFFIXES = {".safetensors", ".bin", ".json", ".txt", ".model"}


def model_fingerprint(model_dir: str) -> str:
    """sha256 over the model folder's weight and config files (names, sizes and contents).

    Remembered per process, keyed by the files' sizes and modification times too, so a model
    saved again into the same folder gets a new fingerprint (and no stale cached embeddings).
    """
    files = sorted(
        p for p in Path(model_dir).rglob("*") if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES
    )
    signature = tuple(
        (str(p), st.st_size, st.st_mtime_ns, st.st_ino) for p, st in ((p, p.stat()) for p in files)
    )
    return _hash_files(model_dir, signature)


@lru_cache(maxsize=8)
def _hash_files(model_dir: str, signature: tuple) -> str:
    digest = hashlib.sha256()
    for name, *_ in signature:
        path = Path(name)
        digest.update(str(path.relative_to(model_dir)).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def texts_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cached_embeddings(
    model_dir: str, texts: list[str], compute: Callable[[list[str]], np.ndarray], tag: str = ""
) -> np.ndarray:
    """`compute(texts)`, read from the cache when the same model already embedded the same texts."""
    key = hashlib.sha256(
        f"{model_fingerprint(model_dir)}:{texts_fingerprint(texts)}:{tag}".encode()
    ).hexdigest()
    path = cache_dir() / f"{key[:40]}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(texts):
                _remember_dim(model_dir, cached)
                return cached
        except (OSError, ValueError):
            pass  # unreadable cache entry: recompute and overwrite it
    values = np.ascontiguousarray(compute(texts), dtype=np.float32)
    _remember_dim(model_dir, values)
    _write_quietly(path, values)
    return values


def known_dim(model_dir: str) -> int | None:
    """The embedding width of the model in `model_dir`, if the cache has seen it embed before:
    an adapter over cached embeddings then needs no model load (seconds) to know its width."""
    try:
        return int(_dim_path(model_dir).read_text())
    except (OSError, ValueError):
        return None


def _dim_path(model_dir: str) -> Path:
    return cache_dir() / f"{model_fingerprint(model_dir)[:40]}.dim"


def _remember_dim(model_dir: str, values: np.ndarray) -> None:
    if values.ndim == 2 and values.shape[1] > 0 and known_dim(model_dir) != values.shape[1]:
        try:
            write_bytes_atomic(_dim_path(model_dir), str(values.shape[1]).encode())
        except OSError:
            pass  # a read-only cache folder must not stop the run


def _write_quietly(path: Path, values: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError:
        pass  # a read-only cache folder must not stop the run
