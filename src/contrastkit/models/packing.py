"""Packed embedding on a CPU: the texts of a chunk are laid end to end in one row of tokens,
each attending only to itself, so no token is padding.

Padded to its longest text, a chunk of texts of mixed length spends most of its compute on
padding; sorting by length helps only when many texts are embedded at once. A server's
batches are small and random (8 to 32 one-sentence requests), so `TextEncoder.encode` packs
them instead: the texts' tokens in one row, position ids restarting at 0 for each text, and an
attention mask that keeps each text to its own tokens (block-diagonal). Mean pooling then
averages each text's own tokens. The result is that of the padded forward up to rounding.

Texts per CPU second with all-MiniLM-L6-v2 (1 thread, 2-core AMD EPYC beside two other jobs,
random Banking77 questions, padded in length-sorted chunks of 256 tokens against packed in
rows of 256):
8 at a time 123-134 against 169-185, 16: 149-152 against 190-204, 32: 167-174 against
201-208, 256: 215-218 against 204-208 (a row of 256 tokens pays attention over all of them).

Only sentence-transformers models made of a transformer, mean pooling and (optionally) a
normalisation are packed, and only after a check at first use that packed and padded
embeddings of a few texts agree (`TextEncoder.packs`); any other model keeps the padded path.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

PACK_TOKENS = 256  # tokens in one packed row (one forward)
AGREEMENT_TEXTS = (
    "a",
    "my card has still not arrived, what should I do?",
    "I was charged twice for the same coffee this morning and I would like one of the two back",
)
AGREEMENT_ATOL = 1e-4


def packable(st) -> bool:
    """True when `st` is a transformer, mean pooling and at most a normalisation."""
    modules = [type(module).__name__ for module in st]
    if len(modules) < 2 or modules[2:] not in ([], ["Normalize"]):
        return False
    if getattr(st[0], "auto_model", None) is None or modules[1] != "Pooling":
        return False
    config = st[1].get_config_dict()
    mode = config.get("pooling_mode", "mean" if config.get("pooling_mode_mean_tokens") else None)
    return mode in ("mean", ["mean"]) and config.get("include_prompt", True)


def packed_rows(lengths: np.ndarray, budget: int) -> list[slice]:
    """Consecutive runs of texts whose tokens add up to at most `budget` (a longer text runs
    alone)."""
    rows, start, total = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and total + n > budget:
            rows.append(slice(start, i))
            start, total = i, 0
        total += int(n)
    if len(lengths):
        rows.append(slice(start, len(lengths)))
    return rows


def embed_packed(st, features: dict) -> Tensor:
    """Unit-length embeddings of the tokenized texts `features` (sentence-transformers'
    `preprocess` output: input_ids and attention_mask, padded), packed in one row."""
    mask = features["attention_mask"].bool()
    lengths = mask.sum(dim=1)
    ids = features["input_ids"][mask].unsqueeze(0)
    types = features.get("token_type_ids")
    types = torch.zeros_like(ids) if types is None else types[mask].unsqueeze(0)
    owner = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    positions = (torch.arange(len(owner)) - starts[owner]).unsqueeze(0)
    model = st[0].auto_model
    dtype = next(model.parameters()).dtype
    allowed = owner[:, None] == owner[None, :]
    attention = torch.zeros(1, 1, len(owner), len(owner), dtype=dtype)
    attention.masked_fill_(~allowed, torch.finfo(dtype).min)
    hidden = model(
        input_ids=ids, attention_mask=attention, position_ids=positions, token_type_ids=types
    ).last_hidden_state[0]
    sums = torch.zeros(len(lengths), hidden.shape[1], dtype=hidden.dtype)
    sums.index_add_(0, owner, hidden)
    means = sums / lengths[:, None].to(hidden.dtype)
    return torch.nn.functional.normalize(means.float(), dim=1)
