"""`Views`: n views of a batch's inputs, by kind of input and mode.

- images: the image augmentation (`ImageViews` or `MultiCropViews`) applied once per view;
- text in mode finetune: `TextViews` (dropout alone, or word edits), the encoder's dropout
  then differs between the passes;
- text and vectors in mode adapter: the same rows n times; the adapter's feature dropout makes
  the views.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.views.text import TextViews


class Views(nn.Module):
    """`views(inputs, n)` -> n views of a batch's inputs, as the module docstring describes."""

    def __init__(
        self,
        augment: nn.Module | None,
        kind: str | None,
        mode: str | None,
        text_augment: str | None = None,
        mask_token: str = "[MASK]",
    ) -> None:
        super().__init__()
        self.augment = augment
        self.text_views = None
        if kind == "text" and mode == "finetune":
            self.text_views = TextViews(text_augment or "dropout", mask_token=mask_token)

    def forward(self, inputs: Any, n: int = 2) -> list:
        if self.augment is not None:
            return [self.augment(inputs) for _ in range(n)]
        if self.text_views is not None:
            return [self.text_views(inputs) for _ in range(n)]
        return [inputs] * n  # adapter: the adapter's dropout makes the views


def mask_token_of(encoder: nn.Module) -> str:
    """The mask token of a text encoder's tokenizer ("[MASK]" when it has none)."""
    tokenizer = getattr(getattr(encoder, "st", None), "tokenizer", None)
    return getattr(tokenizer, "mask_token", None) or "[MASK]"
