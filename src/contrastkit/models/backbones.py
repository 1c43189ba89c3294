"""Backbones: what is trained for each kind of input and mode, and how rows become embeddings.

- `AdapterBackbone`: a frozen base (a text model, or nothing for vectors) whose embeddings are
  computed once (cached on disk for text), with a `ResidualAdapter` trained on top.
- `TextFinetuneBackbone`: the sentence-transformers model itself is trained.
- `ImageBackbone`: a CNN trained from scratch on standardised images.

Each backbone has `encoder` (the trainable nn.Module the method puts a head on), `prepare`
(all training rows in the form batches are cut from), `fetch` (one batch for the encoder),
`embed` (refined, L2-normalised numpy embeddings), `base_embed` (the "before" embeddings),
and `save`/`load` of its own files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from contrastkit.io.atomic import default_mode
from contrastkit.models.adapter import ResidualAdapter
from contrastkit.models.cache import cached_embeddings, known_dim
from contrastkit.models.text import DEFAULT_TEXT_MODEL_ALIASES, TextEncoder, resolve_text_model
from contrastkit.models.vision import build_image_encoder


def _save_weights(module: nn.Module, path: Path) -> None:
    """The module's state dict as safetensors, readable like any file we write (safetensors
    creates it 0600, which would hide a shared model folder's weights from its other users)."""
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    os.chmod(path, default_mode())


def _normalised(x: Tensor) -> np.ndarray:
    return F.normalize(x.float(), dim=1).cpu().numpy()


@torch.no_grad()
def _batched(
    module: nn.Module, inputs: Tensor, batch_size: int, device, transform=None
) -> np.ndarray:
    was_training = module.training
    module.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size].to(device)
        out.append(_normalised(module(transform(chunk) if transform else chunk)))
    module.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class FrozenTextBase:
    """A sentence-transformers model used frozen, its embeddings cached on disk."""

    def __init__(
        self, model: str | None, device, max_seq_length: int | None = None, cache: bool = True
    ) -> None:
        """`cache=False`: never read or write the on-disk embedding cache (a service embeds
        ever new texts; caching each request would only grow the cache folder)."""
        self.name = model
        self.cache = cache
        self.path = resolve_text_model(model)
        self.device = device
        self.max_seq_length = max_seq_length
        self._encoder: TextEncoder | None = None

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = TextEncoder(self.path, self.device, self.max_seq_length).eval()
        return self._encoder

    @property
    def dim(self) -> int:
        if self._encoder is None:
            known = known_dim(self.path)  # no model load when its embeddings are cached
            if known is not None:
                return known
        return self.encoder.dim

    def encode(self, texts: list[str], progress: bool = False, cache: bool = True) -> np.ndarray:
        """`cache=False`: this call bypasses the on-disk cache (texts not worth keeping)."""
        if not (self.cache and cache):
            return self.encoder.encode(texts, progress=progress)
        tag = f"max_seq_length={self.max_seq_length}"
        return cached_embeddings(
            self.path, texts, lambda t: self.encoder.encode(t, progress=progress), tag
        )

    def reference(self) -> str | None:
        """How to find this model again: None for the shipped default, else its folder."""
        if self.name is None or self.name.lower() in DEFAULT_TEXT_MODEL_ALIASES:
            return None
        return self.path


class AdapterBackbone:
    mode = "adapter"

    def __init__(
        self,
        kind: str,
        dim: int,
        base: FrozenTextBase | None,
        device,
        hidden=None,
        dropout=0.1,
        input_dropout=0.3,
    ):
        self.kind, self.base, self.device = kind, base, device
        self.encoder = ResidualAdapter(dim, hidden, dropout, input_dropout).to(device)
        self.dim = dim

    @classmethod
    def from_config(cls, kind: str, dim: int, base, device, config) -> AdapterBackbone:
        """An untrained adapter over `base`, shaped by the config's model options."""
        return cls(kind, dim, base, device, config.adapter_hidden, config.dropout,
                   config.input_dropout)  # fmt: skip

    def fresh(self, config) -> AdapterBackbone:
        """A new, untrained adapter over the same base (a later round of pseudo-labels)."""
        return AdapterBackbone.from_config(self.kind, self.dim, self.base, self.device, config)

    def base_vectors(self, X, progress: bool = False, cache: bool = True) -> np.ndarray:
        if self.base is None:
            return np.asarray(X, np.float32)
        return self.base.encode(X, progress, cache=cache)

    def prepare(self, X, progress: bool = False, cache: bool = True) -> Tensor:
        """The base embeddings of `X` (`cache=False`: not kept in the on-disk cache)."""
        return torch.from_numpy(np.ascontiguousarray(self.base_vectors(X, progress, cache)))

    def fetch(self, prepared: Tensor, indices: list[int]) -> Tensor:
        return prepared[indices].to(self.device)

    def embed(self, X, batch_size: int = 1024) -> np.ndarray:
        return _batched(self.encoder, self.prepare(X), batch_size, self.device)

    def base_embed(self, X) -> np.ndarray:
        return _normalised(torch.from_numpy(self.base_vectors(X)))

    def save(self, folder: Path) -> dict:
        return {
            **self.save_adapter(folder),
            "base_model": self.base.reference() if self.base else None,
            "max_seq_length": self.base.max_seq_length if self.base else None,
        }

    def save_adapter(self, folder: Path) -> dict:
        """The adapter's weights (adapter.safetensors) and shape; not its base."""
        _save_weights(self.encoder, folder / "adapter.safetensors")
        mlp = self.encoder.mlp
        return {
            "dim": self.dim,
            "hidden": mlp[0].out_features,
            "dropout": mlp[2].p,
            "input_dropout": self.encoder.input_dropout.p,
            "residual_scale": self.encoder.scale,
        }

    @classmethod
    def load(cls, folder: Path, kind: str, meta: dict, device) -> AdapterBackbone:
        base = (
            FrozenTextBase(meta["base_model"], device, meta.get("max_seq_length"))
            if kind == "text"
            else None
        )
        return cls.load_adapter(folder, kind, meta, base, device)

    @classmethod
    def load_adapter(cls, folder: Path, kind: str, meta: dict, base, device) -> AdapterBackbone:
        """The adapter `save_adapter` wrote to `folder`, over `base`."""
        backbone = cls(
            kind, meta["dim"], base, device, meta["hidden"], meta["dropout"], meta["input_dropout"]
        )
        backbone.encoder.load_state_dict(
            load_file(str(folder / "adapter.safetensors"), device=str(device))
        )
        backbone.encoder.scale = float(meta.get("residual_scale", 1.0))  # older folders: 1
        backbone.encoder.eval()
        return backbone


class TextFinetuneBackbone:
    kind, mode = "text", "finetune"

    def __init__(self, model: str | None, device, max_seq_length: int | None = None) -> None:
        self.base = FrozenTextBase(model, device, max_seq_length)
        self.encoder = TextEncoder(self.base.path, device, max_seq_length)
        self.device = device
        self.dim = self.encoder.dim

    def prepare(self, X, progress: bool = False) -> list[str]:
        return list(X)

    def fetch(self, prepared: list[str], indices: list[int]) -> list[str]:
        return [prepared[i] for i in indices]

    def embed(self, X) -> np.ndarray:
        return self.encoder.encode(list(X))

    def base_embed(self, X) -> np.ndarray:
        return self.base.encode(list(X))

    def save(self, folder: Path) -> dict:
        self.encoder.save(folder)  # a plain sentence-transformers folder
        return {
            "base_model": self.base.reference(),
            "max_seq_length": self.encoder.st.max_seq_length,
        }

    @classmethod
    def load(cls, folder: Path, kind: str, meta: dict, device) -> TextFinetuneBackbone:
        backbone = cls.__new__(cls)
        backbone.base = FrozenTextBase(meta["base_model"], device, meta.get("max_seq_length"))
        backbone.encoder = TextEncoder(str(folder), device, meta.get("max_seq_length")).eval()
        backbone.device, backbone.dim = device, backbone.encoder.dim
        return backbone


class Standardise(nn.Module):
    """(x - mean) / std per channel, with the statistics of the training images."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def images_to_tensor(X: np.ndarray) -> Tensor:
    """(n, h, w[, c]) uint8 or float -> (n, c, h, w); uint8 stays uint8 to save memory."""
    t = torch.from_numpy(np.ascontiguousarray(X))
    if t.dim() == 3:
        t = t.unsqueeze(-1)
    return t.permute(0, 3, 1, 2).contiguous()


def to_unit_range(x: Tensor) -> Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


class ImageBackbone:
    kind, mode = "images", "finetune"

    def __init__(self, shape: tuple[int, int, int], mean, std, architecture: str, device) -> None:
        self.shape = tuple(shape)  # (c, h, w)
        self.architecture, self.device = architecture, device
        net = build_image_encoder(architecture, in_channels=self.shape[0])
        self.encoder = nn.Sequential(Standardise(mean, std), net).to(device)
        self.dim = net.dim

    @classmethod
    def for_training(cls, X: np.ndarray, architecture: str, device) -> ImageBackbone:
        t = to_unit_range(images_to_tensor(X[: min(len(X), 10000)]))
        mean = t.mean(dim=(0, 2, 3)).tolist()
        std = t.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
        return cls(tuple(images_to_tensor(X[:1]).shape[1:]), mean, std, architecture, device)

    def check_shape(self, X: np.ndarray) -> None:
        from contrastkit.errors import DataError

        shape = tuple(images_to_tensor(X[:1]).shape[1:])
        if shape != self.shape:
            raise DataError(
                f"images have shape (c, h, w) = {shape} but the model was trained on {self.shape}; "
                "resize them to the training size"
            )

    def prepare(self, X, progress: bool = False) -> Tensor:
        self.check_shape(X)
        return images_to_tensor(X)

    def fetch(self, prepared: Tensor, indices: list[int]) -> Tensor:
        return to_unit_range(prepared[indices]).to(self.device)

    def embed(self, X, batch_size: int = 512) -> np.ndarray:
        return _batched(self.encoder, self.prepare(X), batch_size, self.device, to_unit_range)

    def base_embed(self, X) -> np.ndarray:
        """Raw pixels, flattened and standardised: the baseline a CNN has to beat."""
        t = to_unit_range(images_to_tensor(np.asarray(X)))
        t = self.encoder[0].cpu()(t).flatten(1)
        self.encoder.to(self.device)
        return _normalised(t)

    def save(self, folder: Path) -> dict:
        _save_weights(self.encoder, folder / "encoder.safetensors")
        std = self.encoder[0]
        return {
            "shape": list(self.shape),
            "mean": std.mean.flatten().tolist(),
            "std": std.std.flatten().tolist(),
            "architecture": self.architecture,
        }

    @classmethod
    def load(cls, folder: Path, kind: str, meta: dict, device) -> ImageBackbone:
        backbone = cls(
            tuple(meta["shape"]), meta["mean"], meta["std"], meta["architecture"], device
        )
        backbone.encoder.load_state_dict(
            load_file(str(folder / "encoder.safetensors"), device=str(device))
        )
        backbone.encoder.eval()
        return backbone


def build_backbone(kind: str, mode: str, X: Any, config, device, progress: bool = False):
    """The backbone for a fit on X (kind and mode already resolved and checked)."""
    if mode == "adapter":
        base = (
            FrozenTextBase(config.model, device, config.max_seq_length) if kind == "text" else None
        )
        dim = base.dim if base is not None else int(np.asarray(X).shape[1])
        return AdapterBackbone.from_config(kind, dim, base, device, config)
    if kind == "text":
        return TextFinetuneBackbone(config.model, device, config.max_seq_length)
    return ImageBackbone.for_training(X, config.architecture, device)


BACKBONES = {
    ("text", "adapter"): AdapterBackbone,
    ("vectors", "adapter"): AdapterBackbone,
    ("text", "finetune"): TextFinetuneBackbone,
    ("images", "finetune"): ImageBackbone,
}
