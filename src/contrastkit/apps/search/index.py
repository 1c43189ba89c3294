"""`SearchIndex`: semantic search over texts or vectors with any model contrastkit can load."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from contrastkit.apps.embedder import Embedder, load_embedder
from contrastkit.apps.search.rows import Hit, Rows
from contrastkit.errors import ConfigError, DataError
from contrastkit.index.kinds import (
    add_rows,
    choose_kind,
    index_kind,
    make_index,
    remove_keys,
    search_keys,
    train_index,
)
from contrastkit.index.tuning import DEFAULT_RECALL, Probe, tune_nprobe

Metadata = pd.DataFrame | Mapping[str, Sequence]


class SearchIndex:
    """Rows (texts, or vectors) embedded by one model in a faiss index, with ids and metadata.

    >>> index = SearchIndex.build(texts, model="run/model", metadata={"lang": langs})
    >>> index.search(["how do I reset my card?"], k=5, where={"lang": "en"})[0][0]
    Hit(id=17, score=0.83, text='...', metadata={'lang': 'en'})
    >>> index.add(more_texts); index.remove([17]); index.save("my_index")
    >>> index = SearchIndex.load("my_index")   # refuses a model other than the one it was built with

    `kind`: "auto" (exact up to `contrastkit.index.kinds.EXACT_UP_TO` rows, IVF above), "flat",
    "ivf", "ivf-sq8" or "ivf-pq". An IVF index probes the fewest cells that reach `recall`
    (recall@10 against exact search on a sample of the rows, measured when it is built).
    """

    def __init__(
        self,
        embedder: Embedder | Callable[[], Embedder],
        index: faiss.Index,
        rows: Rows,
        probe: Probe,
        model_info: dict | None = None,
    ) -> None:
        """`embedder`: the model, or a function loading it on first use (`model_info` then
        describes it: kind, fingerprint, reference, description)."""
        self._embedder = embedder
        self._model_info = model_info
        self.index, self.rows, self.probe = index, rows, probe

    @classmethod
    def build(
        cls,
        items,
        *,
        model: str | Path | None = None,
        embedder: Embedder | None = None,
        ids: Sequence | None = None,
        metadata: Metadata | None = None,
        kind: str = "auto",
        recall: float = DEFAULT_RECALL,
        progress: bool = False,
    ) -> SearchIndex:
        """Embed `items` (texts, or an (n, d) array of vectors) and index them. `model`: a
        refined model folder, a sentence-transformers folder, or None (text: the shipped
        all-MiniLM-L6-v2; vectors: indexed as they are). `embedder` replaces `model`."""
        if embedder is None:
            embedder = load_embedder(model, vectors=model is None and _is_array(items))
        Z = embedder.encode(items, progress=progress)
        texts = list(items) if embedder.kind == "text" else None
        return cls.from_embeddings(
            Z, embedder, ids=ids, texts=texts, metadata=metadata, kind=kind, recall=recall
        )

    @classmethod
    def from_embeddings(
        cls,
        Z: np.ndarray,
        embedder: Embedder,
        *,
        ids: Sequence | None = None,
        texts: Sequence[str] | None = None,
        metadata: Metadata | None = None,
        kind: str = "auto",
        recall: float = DEFAULT_RECALL,
    ) -> SearchIndex:
        """Index rows `Z` already embedded by `embedder` (unit rows)."""
        if not 0 < recall <= 1:
            raise ConfigError(f"recall must be in (0, 1], got {recall}")
        Z = _checked(Z, embedder.dim)
        index = make_index(choose_kind(len(Z), kind), Z.shape[1], len(Z))
        train_index(index, Z)
        rows = Rows()
        keys = rows.append(len(Z), ids, texts, metadata)
        add_rows(index, Z, keys)
        return cls(embedder, index, rows, tune_nprobe(index, Z, keys, target=recall))

    # -- the model ----------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The index's model, loaded (and checked against the index) on first use."""
        if not isinstance(self._embedder, Embedder):
            self._embedder = self._embedder()
        return self._embedder

    @property
    def model_info(self) -> dict:
        """The model in words: kind, fingerprint, reference (how to load it), description."""
        if isinstance(self._embedder, Embedder) or self._model_info is None:
            e = self.embedder
            return {"kind": e.kind, "fingerprint": e.fingerprint, "reference": e.reference,
                    "description": e.description}  # fmt: skip
        return dict(self._model_info)

    # -- changing the rows --------------------------------------------------------------------
    def add(
        self, items, *, ids: Sequence | None = None, metadata: Metadata | None = None,
        progress: bool = False,
    ) -> None:  # fmt: skip
        """Embed and add rows (ids must be new; without ids, integers continue from the largest)."""
        Z = self.embedder.encode(items, progress=progress)
        texts = list(items) if self.embedder.kind == "text" else None
        self.add_embeddings(Z, ids=ids, texts=texts, metadata=metadata)

    def add_embeddings(
        self,
        Z: np.ndarray,
        *,
        ids: Sequence | None = None,
        texts: Sequence[str] | None = None,
        metadata: Metadata | None = None,
    ) -> None:
        """Add rows already embedded by this index's model."""
        Z = _checked(Z, self.dim)
        if texts is None and len(self.rows) and "text" in self.rows.frame:
            raise DataError("this index holds texts; give the texts of the rows you add")
        keys = self.rows.append(len(Z), ids, texts, metadata)
        add_rows(self.index, Z, keys)

    def remove(self, ids: Sequence) -> int:
        """Remove the rows with these ids (all must be present); returns how many."""
        keys = self.rows.remove(ids)
        return remove_keys(self.index, keys)

    # -- searching ----------------------------------------------------------------------------
    def search(
        self, queries, k: int = 10, where: Mapping[str, object] | None = None
    ) -> list[list[Hit]]:
        """The `k` most similar rows to each query (a text, a list of texts, or vectors), most
        similar first. `where`: only rows whose metadata (or id/text) equal these values; a
        list of values matches any of them. A query gets fewer than `k` hits when fewer rows
        qualify."""
        if isinstance(queries, str):
            queries = [queries]
        return self.search_embeddings(self.embedder.encode(queries), k, where)

    def search_embeddings(
        self, Q: np.ndarray, k: int = 10, where: Mapping[str, object] | None = None
    ) -> list[list[Hit]]:
        """`search` for queries already embedded by this index's model."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a whole number of at least 1, got {k!r}")
        Q = _checked(Q, self.dim)
        allowed = None if not where else self.rows.where(where)
        k = min(int(k), len(self.rows) if allowed is None else len(allowed))
        if k == 0:
            return [[] for _ in range(len(Q))]
        scores, keys = search_keys(self.index, Q, k, self.probe.nprobe, allowed)
        return self.rows.hits(keys, scores)

    # -- describing, saving, loading ----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def kind(self) -> str:
        return index_kind(self.index)

    def __repr__(self) -> str:
        return f"SearchIndex({len(self)} rows, kind={self.kind!r}, dim={self.dim})"

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the index to a folder (faiss index, rows.parquet, manifest.json), replaced
        whole and only once complete; an existing folder needs `overwrite=True`."""
        from contrastkit.apps.search.folder import save_index

        return save_index(self, Path(path), overwrite)

    @classmethod
    def load(
        cls, path: str | Path, *, model: str | Path | None = None, embedder: Embedder | None = None
    ) -> SearchIndex:
        """Read a folder written by `save`. The model is the one the index was built with
        (loaded on first use), or `model`/`embedder`, which must be that same model."""
        from contrastkit.apps.search.folder import load_index

        return load_index(cls, Path(path), model, embedder)


def _is_array(items) -> bool:
    return isinstance(items, np.ndarray) or hasattr(items, "detach")


def _checked(Z: np.ndarray, dim: int | None) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float32)
    if Z.ndim != 2 or len(Z) == 0:
        raise DataError(f"embeddings must be a non-empty (rows, dim) array, got shape {Z.shape}")
    if dim is not None and Z.shape[1] != dim:
        raise DataError(
            f"the embeddings have {Z.shape[1]} dimensions but the index holds {dim}; embed with "
            "the index's model"
        )
    if not np.isfinite(Z).all():
        raise DataError("the embeddings hold NaN or inf; embed the rows again")
    return Z
