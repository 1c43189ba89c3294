"""Views: batched, seeded image augmentations (kornia) that make the positive pairs.

Images arrive as float tensors (n, c, h, w) in [0, 1]; kornia draws its random parameters
from torch's global generator, so `seed_everything` makes the views reproducible.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

Strength = Literal["supervised", "self_supervised"]


class ImageViews(nn.Module):
    """Random resized crop and flip; for self-supervised views also colour jitter, grayscale,
    blur and solarize (SimCLR/BYOL style, colour steps only for RGB)."""

    def __init__(self, height: int, width: int, channels: int, strength: Strength = "supervised"):
        super().__init__()
        try:
            import kornia.augmentation as K
        except ImportError:  # pragma: no cover - kornia is a declared dependency of the image extra
            from contrastkit.errors import ConfigError

            raise ConfigError(
                "image input needs kornia: pip install 'contrastkit[image]'"
            ) from None
        strong = strength == "self_supervised"
        steps: list[nn.Module] = [
            K.RandomResizedCrop((height, width), scale=(0.2, 1.0) if strong else (0.5, 1.0)),
            K.RandomHorizontalFlip(),
        ]
        if channels == 3:
            steps.append(
                K.ColorJitter(0.4, 0.4, 0.2 if strong else 0.0, 0.1 if strong else 0.0, p=0.8)
            )
            if strong:
                steps.append(K.RandomGrayscale(p=0.2))
        elif strong:
            steps.append(K.ColorJitter(0.4, 0.4, p=0.8))
        if strong:
            k = max(3, (min(height, width) // 10) | 1)
            steps += [
                K.RandomGaussianBlur((k, k), (0.1, 2.0), p=0.5),
                K.RandomSolarize(0.1, 0.1, p=0.2),
            ]
        self.pipeline = nn.Sequential(*steps)

    def forward(self, x: Tensor) -> Tensor:
        return self.pipeline(x).clamp_(0.0, 1.0)
