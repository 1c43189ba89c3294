"""Text views for self-supervised training: the two texts of a positive pair.

- "dropout" (SimCSE, Gao et al. 2021): the texts are left as they are; the view comes from the
  text encoder's dropout, which differs between the two passes of the same sentence while the
  encoder is in train mode.
- "delete": each word is dropped with probability `rate` (at least one word is kept).
- "swap": `max(1, round(rate * words))` swaps of two randomly chosen words.
- "mask": a span of `max(1, round(rate * words))` consecutive words is replaced by the
  tokenizer's mask token, one token per word.

`deleted_word_copies` makes the "delete" view of a list of texts several times over, once and
for all: the extra views of labelled texts in adapter mode (see `contrastkit.config.defaults`).

Words are whitespace-separated. Random choices come from torch's generator (the global one
unless `generator` is given), so `seed_everything` makes the views reproducible and a resumed
run, which restores torch's RNG state, draws the same views.
"""

from __future__ import annotations

from typing import Literal

import torch

from contrastkit.errors import ConfigError

TextAugmentation = Literal["dropout", "delete", "swap", "mask"]
TEXT_AUGMENTATIONS: tuple[str, ...] = ("dropout", "delete", "swap", "mask")


class TextViews:
    """`views(texts)` -> one augmented copy of each text (see the module docstring)."""

    def __init__(
        self,
        augmentation: TextAugmentation = "dropout",
        rate: float = 0.1,
        mask_token: str = "[MASK]",
        generator: torch.Generator | None = None,
    ) -> None:
        if augmentation not in TEXT_AUGMENTATIONS:
            raise ConfigError(
                f"unknown text augmentation {augmentation!r}; choose one of "
                f"{', '.join(TEXT_AUGMENTATIONS)}"
            )
        if not 0.0 < rate < 1.0:
            raise ConfigError(f"the text augmentation rate must be in (0, 1), got {rate}")
        self.augmentation, self.rate = augmentation, float(rate)
        self.mask_token, self.generator = mask_token, generator

    def __call__(self, texts: list[str]) -> list[str]:
        if self.augmentation == "dropout":
            return list(texts)
        change = {"delete": self._delete, "swap": self._swap, "mask": self._mask}[self.augmentation]
        out = []
        for text in texts:
            words = text.split()
            out.append(" ".join(change(words)) if len(words) > 1 else text)
        return out

    # -- one text ------------------------------------------------------------------------------
    def _count(self, n_words: int) -> int:
        return max(1, round(self.rate * n_words))

    def _rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.generator)

    def _randint(self, high: int, n: int = 1) -> list[int]:
        return torch.randint(high, (n,), generator=self.generator).tolist()

    def _delete(self, words: list[str]) -> list[str]:
        keep = (self._rand(len(words)) >= self.rate).tolist()
        kept = [w for w, k in zip(words, keep, strict=True) if k]
        return kept or [words[self._randint(len(words))[0]]]

    def _swap(self, words: list[str]) -> list[str]:
        words = list(words)
        for _ in range(self._count(len(words))):
            i, j = self._randint(len(words), 2)
            words[i], words[j] = words[j], words[i]
        return words

    def _mask(self, words: list[str]) -> list[str]:
        span = min(self._count(len(words)), len(words) - 1)
        start = self._randint(len(words) - span + 1)[0]
        return words[:start] + [self.mask_token] * span + words[start + span :]


def deleted_word_copies(texts: list[str], copies: int, rate: float, seed: int) -> list[list[str]]:
    """`copies` versions of `texts`, in each of which every word is dropped with probability
    `rate` (at least one kept), drawn from their own generator seeded with `seed`."""
    views = TextViews("delete", rate, generator=torch.Generator().manual_seed(seed))
    return [views(list(texts)) for _ in range(copies)]
