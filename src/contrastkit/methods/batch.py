"""What a method receives for one training step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor


@dataclass
class Batch:
    inputs: Any  # Tensor of vectors/images, or a list of texts
    labels: Tensor | None = None
    inputs_b: Any = None  # second element of pairs (CLIP)

    def __len__(self) -> int:
        return len(self.inputs)
