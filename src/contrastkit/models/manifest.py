"""The manifest of a saved model folder: metadata plus the sha256 of every file in it.

Loading checks every file against the manifest before reading any of it, so a truncated,
altered or incomplete folder is refused with a message instead of loading something else.
Nothing in a model folder is ever unpickled or executed.
"""

from __future__ import annotations

import json
from pathlib import Path

from contrastkit.errors import UserError
from contrastkit.io.atomic import sha256_file, write_json_atomic

MANIFEST = "contrastkit.json"
FORMAT = "contrastkit-refiner"


class ModelFolderError(UserError):
    """A saved model folder is missing, incomplete or altered."""


def write_manifest(folder: Path, meta: dict) -> None:
    files = {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    write_json_atomic(folder / MANIFEST, dict(meta, files=files))


def read_manifest(folder: Path) -> dict:
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist")
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelFolderError(
            f"{folder} is not a contrastkit model folder ({MANIFEST} is missing); save one with Refiner.save"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFolderError(f"{path} is not valid JSON; the model folder is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFolderError(f"{path} is not a contrastkit model manifest")
    verify_files(folder, meta, path)
    for key in ("kind", "mode", "config", "backbone", "plan"):
        if key not in meta:
            raise ModelFolderError(f"{path} has no {key!r} entry; the model folder is damaged")
    return meta


def verify_files(folder: Path, meta: dict, path: Path) -> None:
    """Every file the manifest `meta` (read from `path`) lists is in `folder`, unaltered."""
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelFolderError(f"{path} lists no files; the model folder is damaged")
    for name, digest in files.items():
        file = folder / name
        if ".." in Path(name).parts or not file.is_file():
            raise ModelFolderError(
                f"model file {file} is missing; copy the whole model folder again"
            )
        if sha256_file(file) != digest:
            raise ModelFolderError(
                f"model file {file} was altered or truncated (checksum mismatch); copy the folder again"
            )
