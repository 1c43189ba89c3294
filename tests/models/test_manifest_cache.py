"""Model-folder manifests (checksums, refusal of damaged folders) and the embedding cache."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from contrastkit.errors import UserError
from contrastkit.models.cache import cache_dir, cached_embeddings, known_dim
from contrastkit.models.manifest import (
    MANIFEST,
    ModelFolderError,
    read_manifest,
    write_manifest,
)

META = {"format": "contrastkit-refiner", "kind": "vectors", "mode": "adapter", "config": {},
        "backbone": {}, "plan": {}}  # fmt: skip


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x00\x01weights")
    (folder / "sub" / "vocab.txt").write_text("a\nb\n")
    write_manifest(folder, META)
    return folder


def test_manifest_lists_every_file_with_its_sha256(model_folder):
    meta = json.loads((model_folder / MANIFEST).read_text())
    expected = {
        "weights.bin": hashlib.sha256(b"\x00\x01weights").hexdigest(),
        "sub/vocab.txt": hashlib.sha256(b"a\nb\n").hexdigest(),
    }
    assert meta["files"] == expected
    assert read_manifest(model_folder)["kind"] == "vectors"


def test_altered_file_is_refused(model_folder):
    (model_folder / "weights.bin").write_bytes(b"\x00\x02weights")
    with pytest.raises(ModelFolderError, match="weights.bin was altered"):
        read_manifest(model_folder)


def test_truncated_file_is_refused(model_folder):
    (model_folder / "sub" / "vocab.txt").write_text("a\n")
    with pytest.raises(ModelFolderError, match="vocab.txt"):
        read_manifest(model_folder)


def test_missing_file_is_refused(model_folder):
    (model_folder / "weights.bin").unlink()
    with pytest.raises(ModelFolderError, match="weights.bin is missing"):
        read_manifest(model_folder)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / MANIFEST).unlink(), "is missing"),
        (lambda f: (f / MANIFEST).write_text("{not json"), "not valid JSON"),
        (lambda f: (f / MANIFEST).write_text('{"format": "other"}'), "not a contrastkit"),
        (lambda f: (f / MANIFEST).write_text(json.dumps(dict(META, files={}))), "no files"),
        (
            lambda f: (f / MANIFEST).write_text(
                json.dumps(dict(META, files={"../outside": "0" * 64}))
            ),
            "missing",
        ),
    ],
)
def test_damaged_manifest_is_refused(model_folder, damage, message):
    damage(model_folder)
    with pytest.raises(ModelFolderError, match=message) as info:
        read_manifest(model_folder)
    assert isinstance(info.value, UserError)


def test_folder_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        read_manifest(tmp_path / "nowhere")


# -- the embedding cache ---------------------------------------------------------------------
class CountingEncoder:
    """A stand-in for a text model: a deterministic vector per text, and a call counter."""

    def __init__(self, offset: float = 0.0) -> None:
        self.calls, self.offset = 0, offset

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t), t.count("a"), self.offset] for t in texts], np.float32)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTRASTKIT_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "fake-model"
    model.mkdir()
    (model / "config.json").write_text('{"v": 1}')
    return model


def _cache_files() -> list:
    folder = cache_dir()
    return sorted(folder.glob("*.npy")) if folder.exists() else []


def test_second_call_with_the_same_texts_reads_the_cache(cache):
    encoder = CountingEncoder()
    first = cached_embeddings(str(cache), ["a cat", "a dog"], encoder)
    again = cached_embeddings(str(cache), ["a cat", "a dog"], encoder)
    assert encoder.calls == 1
    np.testing.assert_array_equal(first, again)
    assert len(_cache_files()) == 1


def test_cache_is_keyed_by_content_order_and_tag(cache):
    encoder = CountingEncoder()
    cached_embeddings(str(cache), ["a cat", "a dog"], encoder)
    cached_embeddings(str(cache), ["a dog", "a cat"], encoder)  # other order: other rows
    cached_embeddings(str(cache), ["a cat", "a dogs"], encoder)
    cached_embeddings(str(cache), ["a cat", "a dog"], encoder, tag="max_seq_length=8")
    # "ab" + "c" and "a" + "bc" join to the same string: lengths are part of the key
    cached_embeddings(str(cache), ["ab", "c"], encoder)
    cached_embeddings(str(cache), ["a", "bc"], encoder)
    assert encoder.calls == 6
    assert len(_cache_files()) == 6


def test_a_changed_model_is_not_served_stale_embeddings(cache):
    """Same folder, new weights (e.g. a model saved again in place): recompute."""
    cached_embeddings(str(cache), ["a cat"], CountingEncoder(offset=0.0))
    (cache / "config.json").write_text('{"v": 2}')
    new = CountingEncoder(offset=1.0)
    out = cached_embeddings(str(cache), ["a cat"], new)
    assert new.calls == 1
    assert out[0, 2] == 1.0


def test_a_damaged_cache_entry_is_recomputed(cache):
    encoder = CountingEncoder()
    cached_embeddings(str(cache), ["a cat", "a dog"], encoder)
    (entry,) = _cache_files()
    entry.write_bytes(b"garbage")
    out = cached_embeddings(str(cache), ["a cat", "a dog"], encoder)
    assert encoder.calls == 2
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(np.load(entry, allow_pickle=False), out)


def test_an_unwritable_cache_does_not_stop_the_run(cache, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("CONTRASTKIT_CACHE", str(blocker))  # its "embeddings" folder cannot exist
    encoder = CountingEncoder()
    out = cached_embeddings(str(cache), ["a cat"], encoder)
    assert out.shape == (1, 3) and encoder.calls == 1


def test_the_width_is_remembered_per_model(cache, tmp_path):
    assert known_dim(str(cache)) is None
    cached_embeddings(str(cache), ["a cat"], CountingEncoder())
    assert known_dim(str(cache)) == 3
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text('{"v": 9}')
    assert known_dim(str(other)) is None  # another model's width is not assumed
    (cache / "config.json").write_text('{"v": 2}')  # the same folder with new weights
    assert known_dim(str(cache)) is None


def test_an_adapter_over_cached_embeddings_does_not_load_the_model(cache, monkeypatch):
    import torch

    from contrastkit.models import backbones

    base = backbones.FrozenTextBase(None, torch.device("cpu"))
    cached_embeddings(base.path, ["a cat"], lambda texts: np.zeros((len(texts), 5), np.float32))

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded although its width is known")

    monkeypatch.setattr(backbones, "TextEncoder", no_load)
    assert base.dim == 5
