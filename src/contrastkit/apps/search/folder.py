"""A search index on disk: one folder, written whole and atomically.

index.faiss    the faiss index (faiss's own binary format; nothing is unpickled)
rows.parquet   key, id, text and metadata of every row
manifest.json  kind, sizes, search settings, the model (fingerprint, where to load it),
               and the sha256 of both files, checked before either is read
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import pyarrow as pa
import pyarrow.parquet as pq

from contrastkit import __version__
from contrastkit.apps.embedder import VECTORS_FINGERPRINT, Embedder, load_embedder
from contrastkit.apps.search.rows import Rows
from contrastkit.errors import DataError, UserError
from contrastkit.index.tuning import Probe
from contrastkit.io.atomic import atomic_folder, json_safe, sha256_file, write_json_atomic

MANIFEST = "manifest.json"
FORMAT = "contrastkit-search-index"
FILES = ("index.faiss", "rows.parquet")


class IndexFolderError(UserError):
    """A search index folder is missing, incomplete, altered or built with another model."""


def save_index(search_index, path: Path, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; pass overwrite=True (--overwrite) to replace it")
    if path.exists() and not (path / MANIFEST).is_file():
        raise UserError(f"{path} exists and is not a search index folder; choose another path")
    with atomic_folder(path) as tmp:
        faiss.write_index(search_index.index, str(tmp / "index.faiss"))
        try:
            table = pa.Table.from_pandas(search_index.rows.frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(
                f"the metadata cannot be saved as Parquet ({exc}); give each column one type"
            ) from None
        pq.write_table(table, tmp / "rows.parquet")
        probe = search_index.probe
        write_json_atomic(tmp / MANIFEST, json_safe({
            "format": FORMAT,
            "format_version": 1,
            "contrastkit_version": __version__,
            "kind": search_index.kind,
            "dim": search_index.dim,
            "rows": len(search_index),
            "next_key": search_index.rows.next_key,
            "probe": {"nprobe": probe.nprobe, "recall": probe.recall, "k": probe.k, "sample": probe.sample},
            "model": search_index.model_info,
            "files": {name: sha256_file(tmp / name) for name in FILES},
        }))  # fmt: skip
    return path


def read_manifest(path: Path) -> dict:
    """The folder's manifest, after checking both files against their checksums."""
    if not (path / MANIFEST).is_file():
        what = (
            "does not exist"
            if not path.exists()
            else f"is not a search index ({MANIFEST} is missing)"
        )
        raise IndexFolderError(f"{path} {what}; build one with `contrastkit index`")
    try:
        meta = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = meta["files"]
        if meta["format"] != FORMAT:
            raise KeyError("format")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise IndexFolderError(f"{path / MANIFEST} is damaged; build the index again") from None
    for name in FILES:
        file = path / name
        if not file.is_file():
            raise IndexFolderError(f"{file} is missing; copy the whole index folder again")
        if sha256_file(file) != files.get(name):
            raise IndexFolderError(
                f"{file} was altered or truncated (checksum mismatch); copy the folder again"
            )
    return meta


def load_index(cls, path: Path, model, embedder: Embedder | None):
    meta = read_manifest(path)
    index = faiss.read_index(str(path / "index.faiss"))
    frame = pq.read_table(path / "rows.parquet").to_pandas(integer_object_nulls=True)
    rows = Rows(frame, next_key=int(meta["next_key"]))
    probe = Probe(**meta["probe"])
    built = meta["model"]
    if embedder is not None:
        _same_model(path, built, embedder)
        return cls(embedder, index, rows, probe)

    def loader() -> Embedder:
        if model is not None:
            chosen = load_embedder(model)
        else:
            vectors = built["fingerprint"] == VECTORS_FINGERPRINT
            try:
                chosen = load_embedder(built["reference"], vectors=vectors)
            except UserError as exc:  # e.g. the model's folder moved
                raise IndexFolderError(
                    f"the index {path} was built with {built['description']}, which cannot be "
                    f"loaded now ({exc}); pass the model (model=..., --model)"
                ) from None
        _same_model(path, built, chosen, changed=model is None)
        return chosen

    return cls(loader if model is None else loader(), index, rows, probe, built)


def _same_model(path: Path, built: dict, embedder: Embedder, changed: bool = False) -> None:
    if embedder.fingerprint == built["fingerprint"]:
        return
    if changed:
        raise IndexFolderError(
            f"{built['description']} has changed since the index {path} was built (its files "
            "differ); rebuild the index, or pass the model it was built with"
        )
    raise IndexFolderError(
        f"the index {path} was built with {built['description']} (fingerprint "
        f"{built['fingerprint'][:12]}), not {embedder.description} (fingerprint "
        f"{embedder.fingerprint[:12]}); search it with the model it was built with, or rebuild it"
    )
