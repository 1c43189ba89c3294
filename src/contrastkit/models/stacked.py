"""A fine-tuned model with a residual adapter over its embeddings: what a finetune-mode fit with
pseudo-labels makes (`contrastkit.refiner.unlabelled`). The fine-tuned encoder (a transformer
or a CNN) is frozen once it has trained on the labelled rows; the adapter then trains on its
embeddings of the labelled and pseudo-labelled rows.

Saved as the fine-tuned backbone's own files in `tuned/` (for text a sentence-transformers
folder, which without the adapter embeds differently) and `adapter.safetensors` beside it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from contrastkit.models.backbones import BACKBONES, AdapterBackbone

TUNED_DIR = "tuned"


class TunedBase:
    """A fine-tuned backbone used frozen as an adapter's base. Its embeddings are never cached
    on disk: they belong to this model only, and the cache is keyed by a model folder. While a
    fit runs (`remembering`), it keeps each row's embedding in memory, because every stage and
    round after the fine-tuning embeds the same rows again; `forget` ends that, so that a model
    that goes on to serve does not grow."""

    def __init__(self, tuned, remembering: bool = False) -> None:
        self.tuned = tuned
        self.dim = tuned.dim
        self.remembering = remembering
        self._memo: dict = {}

    def encode(self, X, progress: bool = False, cache: bool = True) -> np.ndarray:
        """`cache` is the on-disk cache's flag (see `FrozenTextBase`); this one has none."""
        keys = [_row_key(x) for x in X] if self.remembering else []
        if not keys:
            return self.tuned.embed(X)
        first: dict = {}
        for i, key in enumerate(keys):
            if key not in self._memo:
                first.setdefault(key, i)
        if first:
            rows = [X[i] for i in first.values()]
            new = self.tuned.embed(np.stack(rows) if isinstance(X, np.ndarray) else rows)
            self._memo.update(zip(first, new, strict=True))
        return np.stack([self._memo[k] for k in keys])

    @property
    def remembered(self) -> int:
        """How many rows' embeddings are held."""
        return len(self._memo)

    def forget(self) -> None:
        self.remembering = False
        self._memo.clear()


def _row_key(row):
    """A text is its own key; an image (an array) the digest of its bytes."""
    if isinstance(row, str):
        return row
    return hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).digest()


class StackedBackbone:
    """`embed(X) = adapter(tuned.embed(X))`; `encoder` is the adapter (what trains now), `base`
    the fine-tuned backbone's own base (the "before" embeddings and the model's fingerprint)."""

    mode = "finetune"

    def __init__(self, tuned, adapter: AdapterBackbone) -> None:
        self.tuned, self.adapter = tuned, adapter
        self.kind, self.device, self.dim = tuned.kind, tuned.device, tuned.dim
        self.encoder = adapter.encoder
        self.base = getattr(tuned, "base", None)

    @classmethod
    def over(cls, tuned, config) -> StackedBackbone:
        """A fresh adapter (the identity until it trains) over the fine-tuned `tuned`; while
        training, its base remembers the embeddings (see `TunedBase`) until `forget`."""
        base = TunedBase(tuned, remembering=True)
        adapter = AdapterBackbone.from_config(tuned.kind, tuned.dim, base, tuned.device, config)
        return cls(tuned, adapter)

    def fresh(self, config) -> StackedBackbone:
        """A new, untrained adapter over the same fine-tuned model (and the same memory)."""
        return StackedBackbone(self.tuned, self.adapter.fresh(config))

    def forget(self) -> None:
        """The fit is over: embeddings are no longer remembered."""
        self.adapter.base.forget()

    def prepare(self, X, progress: bool = False, cache: bool = True):
        return self.adapter.prepare(X, progress, cache)

    def fetch(self, prepared, indices: list[int]):
        return self.adapter.fetch(prepared, indices)

    def embed(self, X) -> np.ndarray:
        return self.adapter.embed(X)

    def base_embed(self, X) -> np.ndarray:
        return self.tuned.base_embed(X)

    def save(self, folder: Path) -> dict:
        (folder / TUNED_DIR).mkdir(exist_ok=True)
        tuned = self.tuned.save(folder / TUNED_DIR)
        return {"stacked": True, "tuned": tuned, "adapter": self.adapter.save_adapter(folder)}

    @classmethod
    def load(cls, folder: Path, kind: str, meta: dict, device) -> StackedBackbone:
        tuned = BACKBONES[(kind, "finetune")].load(folder / TUNED_DIR, kind, meta["tuned"], device)
        adapter = AdapterBackbone.load_adapter(folder, kind, meta["adapter"], TunedBase(tuned), device)  # fmt: skip
        return cls(tuned, adapter)


def backbone_class(kind: str, mode: str, meta: dict):
    """The backbone class that loads a saved model's `backbone` entry `meta`."""
    return StackedBackbone if meta.get("stacked") else BACKBONES[(kind, mode)]
