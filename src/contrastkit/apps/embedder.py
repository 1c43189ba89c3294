"""`Embedder`: any model contrastkit can load, as one thing that turns rows into unit vectors.

    >>> embedder = load_embedder("run/model")      # a refined model folder (contrastkit.json)
    >>> embedder = load_embedder("my-st-model/")   # a sentence-transformers folder
    >>> embedder = load_embedder(None)             # the shipped all-MiniLM-L6-v2
    >>> embedder = load_embedder(None, vectors=True)  # precomputed vectors, only normalised
    >>> Z = embedder.encode(["a sentence", "another"])  # float32 (n, dim), unit rows

The search index, duplicate finder and HTTP service all embed through this class, and store
`embedder.fingerprint` so that an index built with one model refuses queries from another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from contrastkit.apps.progress import progress_bar
from contrastkit.data.inputs import check_input
from contrastkit.errors import DataError

# Rows embedded per step of the progress bar.
CHUNK_ROWS = 4096
VECTORS_FINGERPRINT = "vectors"


@dataclass
class Embedder:
    """Rows -> float32 unit vectors (n, dim) with one model; made by `load_embedder`.

    `kind`: what `encode` takes ("text", "vectors" or "images"). `dim`: the embedding width
    (None for precomputed vectors until the first call). `fingerprint`: sha256 over the
    model's files (the same weights give the same value wherever the folder lies; "vectors"
    for precomputed vectors). `reference`: what to pass to `load_embedder` to load the model
    again (a folder path; None for the shipped default or for vectors). `description`: the
    model in words, for messages. `count_tokens(texts)`: the tokens each text takes in the
    model (text models; None otherwise).
    """

    kind: str
    dim: int | None
    fingerprint: str
    reference: str | None
    description: str
    embed: Callable[[object], np.ndarray] = field(repr=False)
    count_tokens: Callable[[list[str]], np.ndarray] | None = field(default=None, repr=False)

    def encode(self, inputs, progress: bool = False) -> np.ndarray:
        """Embed `inputs` (texts, a float array of vectors, or images, as `kind` says)."""
        X, kind = check_input(inputs)
        if kind != self.kind:
            raise DataError(f"{self.description} embeds {self.kind} but was given {kind}")
        if kind == "vectors" and self.dim is not None and X.shape[1] != self.dim:
            raise DataError(
                f"the vectors have {X.shape[1]} dimensions but {self.description} gives "
                f"{self.dim}; embed them with the same model"
            )
        if progress and len(X) > CHUNK_ROWS:
            parts = []
            with progress_bar(len(X), "embedding", True) as advance:
                for start in range(0, len(X), CHUNK_ROWS):
                    parts.append(self.embed(X[start : start + CHUNK_ROWS]))
                    advance(len(parts[-1]))
            Z = np.concatenate(parts)
        else:
            Z = self.embed(X)
        Z = np.ascontiguousarray(Z, dtype=np.float32)
        self.dim = Z.shape[1] if self.dim is None else self.dim
        return Z


def load_embedder(
    model: str | Path | None, *, vectors: bool = False, device: str = "auto", cache: bool = True
) -> Embedder:
    """The embedder for `model`: a refined model folder (it holds contrastkit.json), a
    sentence-transformers folder or the name of the shipped model (None: all-MiniLM-L6-v2);
    with `vectors=True` and no model, precomputed vectors that are only checked and normalised.
    Models are never downloaded. `cache=False`: texts are embedded by the model every time,
    never read from or written to the on-disk embedding cache (for a service)."""
    if vectors and model is None:
        return Embedder(
            "vectors", None, VECTORS_FINGERPRINT, None, "precomputed vectors", unit_rows
        )
    from contrastkit.models.manifest import MANIFEST

    if model is not None and (Path(model) / MANIFEST).is_file():
        return _refined(Path(model), device, cache)
    return _sentence_transformer(None if model is None else str(model), device, cache)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32; rows checked by `check_input`, so none is zero).
    Rows that are unit already come back as they are, without a copy."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.abs(norms - 1).max() <= 1e-5:
        return X
    return X / norms


def _sentence_transformer(model: str | None, device: str, cache: bool) -> Embedder:
    from contrastkit.models.backbones import FrozenTextBase
    from contrastkit.models.cache import model_fingerprint
    from contrastkit.training.distributed import resolve_device

    base = FrozenTextBase(model, resolve_device(device), cache=cache)
    reference = base.reference()
    name = "all-MiniLM-L6-v2 (shipped)" if reference is None else f"the model in {base.path}"
    return Embedder(
        "text", base.dim, model_fingerprint(base.path), reference, name, lambda t: base.encode(t),
        token_counter_of(base),
    )  # fmt: skip


def _refined(folder: Path, device: str, cache: bool) -> Embedder:
    from contrastkit.models.cache import model_fingerprint
    from contrastkit.models.manifest import MANIFEST
    from contrastkit.refiner import Refiner

    refiner = Refiner.load(folder, device=device)  # checks every file against its checksum
    files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode())
    base = getattr(refiner.backbone_, "base", None)
    if base is not None:  # an adapter embeds through its base model: that is part of it
        digest.update(model_fingerprint(base.path).encode())
        base.cache = cache
    dim = getattr(refiner.backbone_, "dim", None)
    return Embedder(
        refiner.kind_,
        None if dim is None else int(dim),
        digest.hexdigest(),
        str(folder.resolve()),
        f"the refined model in {folder}",
        refiner.transform,
        token_counter_of(refiner.backbone_),
    )


def token_counter_of(backbone) -> Callable[[list[str]], np.ndarray] | None:
    """The token counter of a model's transformer (a frozen text base, a fine-tuned one, or the
    base of an adapter over text, the fine-tuned transformer under an adapter); None for models
    of vectors or images. A frozen base loads its transformer only when tokens are first counted
    (not to build the counter)."""
    from contrastkit.models.backbones import FrozenTextBase
    from contrastkit.models.text import TextEncoder

    backbone = getattr(backbone, "tuned", backbone)  # a fine-tuned model under an adapter
    base = backbone if isinstance(backbone, FrozenTextBase) else None
    if base is None:
        encoder = getattr(backbone, "encoder", None)
        if isinstance(encoder, TextEncoder):
            return encoder.token_counts
        base = getattr(backbone, "base", None)
    if not isinstance(base, FrozenTextBase):
        return None
    return lambda texts: base.encoder.token_counts(texts)
