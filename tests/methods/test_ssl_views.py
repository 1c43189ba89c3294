"""Image views (ImageViews, multi-crop), text views, and how recipes make views per input kind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.errors import ConfigError
from contrastkit.methods.two_view import encode_views
from contrastkit.views.batch import Views
from contrastkit.views.images import ImageViews, MultiCropViews, crop_padding, local_crop_size
from contrastkit.views.text import TextViews

SENTENCES = [
    "how do i activate my new card",
    "my transfer has not arrived yet",
    "can i change the pin of my card at an atm",
    "why was i charged a fee for this payment",
    "what currencies can i hold in my account",
]


def _images(n=6, c=1, h=12, w=12) -> torch.Tensor:
    torch.manual_seed(3)
    return torch.rand(n, c, h, w)


def _step_names(views: ImageViews) -> list[str]:
    return [type(step).__name__ for step in views.pipeline]


def test_supervised_views_keep_their_pipeline():
    gray, rgb = ImageViews(12, 12, 1, "supervised"), ImageViews(12, 12, 3, "supervised")
    assert _step_names(gray) == ["RandomCrop", "RandomHorizontalFlip"]
    assert _step_names(rgb) == ["RandomCrop", "RandomHorizontalFlip", "ColorJitter"]
    assert gray.scale is None  # a shifted crop of the padded image, not a resized one


def test_supervised_views_given_a_scale_use_a_resized_crop():
    views = ImageViews(12, 12, 1, "supervised", scale=(0.6, 1.0))
    assert _step_names(views) == ["RandomResizedCrop", "RandomHorizontalFlip"]
    assert views.scale == pytest.approx((0.6, 1.0))


@pytest.mark.parametrize(("side", "padding"), [(8, 1), (28, 2), (32, 2), (224, 16)])
def test_crop_padding_scales_with_the_image(side, padding):
    assert crop_padding(side, side) == padding


def test_self_supervised_views_add_colour_blur_and_solarize():
    rgb = ImageViews(12, 12, 3, "self_supervised")
    assert _step_names(rgb) == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "ColorJitter",
        "RandomGrayscale",
        "RandomGaussianBlur",
        "RandomSolarize",
    ]
    assert rgb.scale == pytest.approx((0.2, 1.0))


@pytest.mark.parametrize("channels", [1, 3])
def test_views_are_batched_in_range_and_seeded(channels):
    x = _images(c=channels)
    views = ImageViews(12, 12, channels, "self_supervised")
    torch.manual_seed(0)
    a, b = views(x), views(x)
    torch.manual_seed(0)
    a2 = views(x)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, a2)  # same seed, same views
    assert not torch.equal(a, b)  # two draws differ


@pytest.mark.parametrize("size,expected", [(28, 12), (64, 27), (8, 8), (12, 8), (224, 96)])
def test_local_crop_size_follows_swav_ratio(size, expected):
    assert local_crop_size(size, size) == (expected, expected)


@pytest.mark.parametrize("local_crops", [0, 3])
def test_multi_crop_gives_two_global_and_k_local_views(local_crops):
    x = _images(n=4, c=1, h=28, w=28)
    crops = MultiCropViews(28, 28, 1, local_crops)
    assert crops.global_views.scale == (0.14, 1.0) and crops.local_views.scale == (0.05, 0.14)
    views = crops(x)
    assert len(views) == 2 + local_crops
    assert [tuple(v.shape) for v in views[:2]] == [(4, 1, 28, 28)] * 2
    assert all(tuple(v.shape) == (4, 1, 12, 12) for v in views[2:])


def test_text_dropout_view_is_the_text_itself():
    assert TextViews("dropout")(SENTENCES) == SENTENCES


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(word in it for word in short)


def test_text_delete_keeps_an_ordered_nonempty_subsequence():
    g = torch.Generator().manual_seed(0)
    views = TextViews("delete", rate=0.5, generator=g)
    changed = 0
    for _ in range(20):
        for text, view in zip(SENTENCES, views(SENTENCES), strict=True):
            words, kept = text.split(), view.split()
            assert kept and _is_subsequence(kept, words)
            changed += kept != words
    assert changed > 50  # rate 0.5 drops words in most views


def test_text_swap_permutes_the_words():
    g = torch.Generator().manual_seed(1)
    out = TextViews("swap", rate=0.3, generator=g)(SENTENCES)
    assert all(sorted(v.split()) == sorted(t.split()) for t, v in zip(SENTENCES, out, strict=True))
    assert out != SENTENCES


def test_text_mask_replaces_one_contiguous_span():
    g = torch.Generator().manual_seed(2)
    views = TextViews("mask", rate=0.3, mask_token="<mask>", generator=g)
    for text, view in zip(SENTENCES, views(SENTENCES), strict=True):
        words, masked = text.split(), view.split()
        assert len(masked) == len(words)
        positions = [i for i, w in enumerate(masked) if w == "<mask>"]
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        assert len(positions) == max(1, round(0.3 * len(words)))
        assert all(m == w for m, w in zip(masked, words, strict=True) if m != "<mask>")


def test_text_views_are_seeded_and_leave_single_words_alone():
    a = TextViews("delete", rate=0.4, generator=torch.Generator().manual_seed(5))(SENTENCES)
    b = TextViews("delete", rate=0.4, generator=torch.Generator().manual_seed(5))(SENTENCES)
    assert a == b
    assert TextViews("mask", generator=torch.Generator().manual_seed(0))(["hello"]) == ["hello"]


@pytest.mark.parametrize("kwargs", [{"augmentation": "shuffle"}, {"rate": 0.0}, {"rate": 1.0}])
def test_text_views_reject_bad_options(kwargs):
    with pytest.raises(ConfigError):
        TextViews(**kwargs)


def test_views_per_kind():
    vectors = torch.randn(4, 8)
    adapter = Views(None, "vectors", "adapter")
    v1, v2 = adapter(vectors)
    assert v1 is vectors and v2 is vectors  # the adapter's dropout makes the views
    finetune = Views(None, "text", "finetune")
    assert finetune(SENTENCES) == [SENTENCES, SENTENCES]  # SimCSE: encoder dropout
    frozen = Views(None, "text", "adapter", text_augment=None)
    assert frozen(SENTENCES) == [SENTENCES, SENTENCES]
    images = Views(ImageViews(12, 12, 1, "self_supervised"), "images", "finetune")
    a, b = images(_images())
    assert a.shape == b.shape == (6, 1, 12, 12) and not torch.equal(a, b)


def test_encode_views_matches_one_view_at_a_time():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    views = [torch.rand(3, 1, 12, 12), torch.rand(3, 1, 12, 12), torch.rand(3, 1, 8, 8)]
    joint = encode_views(net, views)
    for got, view in zip(joint, views, strict=True):
        torch.testing.assert_close(got, net(view))
    texts = encode_views(lambda t: torch.tensor([[float(len(s))] for s in t]), [["ab"], ["abc"]])
    assert [float(z) for z in texts] == [2.0, 3.0]
