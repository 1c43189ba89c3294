"""The recommender's model folder: tensors in safetensors, ids and settings in JSON, every file
listed with its sha256 in `contrastkit.json` and checked before anything is read. Nothing is
pickled; the folder is written beside its place and renamed in only when complete.

    model/
      contrastkit.json      format, options, tower shape, file checksums
      weights.safetensors   adapters, id embeddings
      catalogue.safetensors item features, popularity, the users' histories (CSR)
      ids.json              user ids, item ids, titles, genres
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from contrastkit.apps.recommend.catalogue import Catalogue
from contrastkit.apps.recommend.options import RecommenderOptions
from contrastkit.apps.recommend.towers import TowerShape, TwoTower
from contrastkit.io.atomic import atomic_folder, default_mode, write_json_atomic
from contrastkit.models.manifest import MANIFEST, ModelFolderError, verify_files, write_manifest

FORMAT = "contrastkit-recommender"
VERSION = 1


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    os.chmod(path, default_mode())  # safetensors writes 0600


def save_recommender(rec, path: Path) -> None:
    """Write `rec` (a fitted Recommender) to the folder `path`, replacing it whole."""
    cat: Catalogue = rec.catalogue_
    with atomic_folder(path) as tmp:
        _save_tensors(dict(rec.model_.state_dict()), tmp / "weights.safetensors")
        tensors = {
            "popularity": torch.from_numpy(rec.popularity_.astype(np.int64)),
            "history_indptr": torch.from_numpy(rec.history_.indptr.astype(np.int64)),
            "history_indices": torch.from_numpy(rec.history_.indices.astype(np.int64)),
        }
        if cat.features is not None:
            tensors["features"] = torch.from_numpy(cat.features)
        _save_tensors(tensors, tmp / "catalogue.safetensors")
        ids = {
            "users": [str(u) for u in rec.user_ids_],
            "items": [str(i) for i in cat.ids],
            "titles": list(cat.titles),
            "genres": cat.genres,
        }
        write_json_atomic(tmp / "ids.json", ids)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "options": rec.options.to_dict(),
            "shape": asdict(rec.model_.shape),
            "feature_kind": cat.feature_kind,
            "text_model": cat.text_model,
            "best_epoch": rec.best_epoch_,
            "log": rec.log_,
        }
        write_manifest(tmp, meta)


def read_meta(folder: Path) -> dict:
    """The checked manifest of a recommender model folder."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist; check the path")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(
            f"{folder} is not a model folder ({MANIFEST} is missing); pass the model folder of a "
            "run (RUN_DIR/model)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFolderError(f"{path} is not valid JSON; the model folder is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFolderError(
            f"{folder} holds no recommender (it is another kind of contrastkit model); pass the "
            "model folder of a `contrastkit recommend fit` run"
        )
    if meta.get("version") != VERSION:
        raise ModelFolderError(
            f"{folder} was written by another version of contrastkit (format version "
            f"{meta.get('version')!r}, this one reads {VERSION}); train it again"
        )
    verify_files(folder, meta, path)
    return meta


def load_recommender(cls, folder: Path):
    meta = read_meta(folder)
    tensors = load_file(str(folder / "catalogue.safetensors"))
    ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    features = tensors.get("features")
    shape = TowerShape(**meta["shape"])
    rec = cls(**RecommenderOptions.from_dict(meta["options"]).to_dict())
    rec.model_ = TwoTower(shape, features if shape.feature_dim else None)
    rec.model_.load_state_dict(load_file(str(folder / "weights.safetensors")))
    rec.model_.eval()
    rec.catalogue_ = Catalogue(
        np.asarray(ids["items"], dtype=object),
        list(ids["titles"]),
        ids["genres"],
        None if features is None else features.numpy(),
        meta["text_model"],
        meta["feature_kind"],
    )
    rec.user_ids_ = np.asarray(ids["users"], dtype=object)
    rec.popularity_ = tensors["popularity"].numpy()
    rec.history_ = sp.csr_matrix(
        (
            np.ones(len(tensors["history_indices"]), np.float32),
            tensors["history_indices"].numpy(),
            tensors["history_indptr"].numpy(),
        ),
        shape=(len(rec.user_ids_), len(rec.catalogue_.ids)),
    )
    rec.log_, rec.best_epoch_ = meta.get("log", []), meta.get("best_epoch")
    rec._vectors = None
    return rec
