"""Views: batched, seeded image augmentations (kornia) that make the positive pairs.

Images arrive as float tensors (n, c, h, w) in [0, 1]; kornia draws its random parameters
from torch's global generator, so `seed_everything` makes the views reproducible.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

Strength = Literal["supervised", "self_supervised"]


def _kornia():
    try:
        import kornia.augmentation as K
    except ImportError:  # pragma: no cover - kornia is a declared dependency of the image extra
        from contrastkit.errors import ConfigError

        raise ConfigError("image input needs kornia: pip install 'contrastkit[image]'") from None
    return K


def crop_padding(height: int, width: int) -> int:
    """Pixels of zero padding for the supervised random crop: 1/14 of the shorter side, at
    least 1 (2 px on 28x28 and 32x32 images, 16 px on 224x224)."""
    return max(1, round(min(height, width) / 14))


class ImageViews(nn.Module):
    """Supervised views: a random crop of the zero-padded image (a shift of up to
    `crop_padding` pixels) and a flip, plus brightness/contrast jitter for RGB.
    Self-supervised views: random resized crop, flip, colour jitter, grayscale, blur and
    solarize (SimCLR/BYOL style, colour steps only for RGB).

    Why supervised views are light: the labels already supply positives that differ in
    everything but the class, so the views only need to add small invariances; a resized crop
    of half the image (the former default) slowed learning on Fashion-MNIST (validation kNN-1
    88.4 % against 89.6 % for the shifted crop, 4 epochs of the small CNN, 5000 held-out
    training images).

    `output_size` (default: the input's (height, width)) and `scale` (the crop's share of the
    image area; default (0.2, 1) self-supervised) serve multi-crop; a supervised view given
    either uses a random resized crop (scale default (0.5, 1)) instead of the shifted crop.
    """

    def __init__(
        self,
        height: int,
        width: int,
        channels: int,
        strength: Strength = "supervised",
        *,
        output_size: tuple[int, int] | None = None,
        scale: tuple[float, float] | None = None,
    ):
        super().__init__()
        K = _kornia()
        self.height, self.width, self.channels = height, width, channels
        strong = strength == "self_supervised"
        out_h, out_w = output_size or (height, width)
        shifted = not strong and scale is None and (out_h, out_w) == (height, width)
        scale = scale or ((0.2, 1.0) if strong else (0.5, 1.0))
        self.output_size, self.scale = (out_h, out_w), (None if shifted else scale)
        crop = (
            K.RandomCrop((height, width), padding=crop_padding(height, width))
            if shifted
            else K.RandomResizedCrop((out_h, out_w), scale=scale)
        )
        steps: list[nn.Module] = [crop, K.RandomHorizontalFlip()]
        if channels == 3:
            steps.append(
                K.ColorJitter(0.4, 0.4, 0.2 if strong else 0.0, 0.1 if strong else 0.0, p=0.8)
            )
            if strong:
                steps.append(K.RandomGrayscale(p=0.2))
        elif strong:
            steps.append(K.ColorJitter(0.4, 0.4, p=0.8))
        if strong:
            k = max(3, (min(out_h, out_w) // 10) | 1)
            steps += [
                K.RandomGaussianBlur((k, k), (0.1, 2.0), p=0.5),
                K.RandomSolarize(0.1, 0.1, p=0.2),
            ]
        self.pipeline = nn.Sequential(*steps)

    def forward(self, x: Tensor) -> Tensor:
        return self.pipeline(x).clamp_(0.0, 1.0)


def local_crop_size(height: int, width: int) -> tuple[int, int]:
    """SwAV's local/global resolution ratio (96/224), never below 8 pixels (nor above the image)."""
    return tuple(min(s, max(8, round(s * 96 / 224))) for s in (height, width))  # type: ignore[return-value]


class MultiCropViews(nn.Module):
    """SwAV multi-crop (Caron et al. 2020): two global views at full resolution, crop scale
    (0.14, 1), and `local_crops` small views at `local_crop_size`, crop scale (0.05, 0.14),
    each with the self-supervised colour, blur and solarize steps.

    `forward(x)` returns a list: [global 1, global 2, local 1, ..., local k].
    """

    def __init__(self, height: int, width: int, channels: int, local_crops: int = 4) -> None:
        super().__init__()
        if local_crops < 0:
            raise ValueError(f"local_crops must be >= 0, got {local_crops}")
        self.local_crops = local_crops
        self.global_views = ImageViews(
            height, width, channels, "self_supervised", scale=(0.14, 1.0)
        )
        self.local_views = ImageViews(
            height,
            width,
            channels,
            "self_supervised",
            output_size=local_crop_size(height, width),
            scale=(0.05, 0.14),
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        views = [self.global_views(x), self.global_views(x)]
        return views + [self.local_views(x) for _ in range(self.local_crops)]
