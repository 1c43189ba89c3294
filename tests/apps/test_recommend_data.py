"""Reading interactions and items: formats, column options, and one-sentence errors for bad
files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from contrastkit.apps.recommend.data import (
    Columns,
    index_interactions,
    interactions_from_table,
    read_table,
    table_from_frame,
)
from contrastkit.apps.recommend.inputs import ReadOptions, load_data
from contrastkit.apps.recommend.items import read_items
from contrastkit.errors import ConfigError, DataError


def _raw(path, **kwargs):
    return interactions_from_table(read_table(path, "interactions"), **kwargs)


def test_csv_tsv_jsonl_parquet_read_alike(tmp_path):
    frame = pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 10], "rating": [5, 3, 4]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")))
    for name in ("a.csv", "a.tsv", "a.parquet", "a.jsonl"):
        raw = _raw(tmp_path / name)
        assert list(raw.users) == ["1", "1", "2"] and list(raw.items) == ["10", "11", "10"]
        assert raw.timestamps is None


def test_column_names_are_options_and_min_rating_keeps_positives(tmp_path):
    frame = pd.DataFrame(
        {
            "uid": ["a", "a", "b"],
            "movie": ["x", "y", "x"],
            "stars": [5, 2, 4],
            "when": ["2020-01-02", "2020-01-01", "2021-05-05T10:00:00"],
        }
    )
    frame.to_csv(tmp_path / "r.csv", index=False)
    raw = _raw(tmp_path / "r.csv", columns=Columns("uid", "movie", "stars", "when"), min_rating=4)
    assert list(zip(raw.users, raw.items, strict=True)) == [("a", "x"), ("b", "x")]
    assert raw.timestamps[1] > raw.timestamps[0]
    assert "1 interactions rated below 4" in raw.notes[0]


@pytest.mark.parametrize(
    "content, match",
    [
        ("user,item\n", "no data rows"),
        ("", "is empty"),
        ("user,product\n1,2\n", "no column 'item'"),
        ("user,item,rating\n1,2,5\n1,3,great\n", "'great' at line 3, not a rating"),
        ("user,item,timestamp\n1,2,yesterday\n", "neither a number nor a date"),
        ("user,item\n1,2\n,3\n", "missing id"),
    ],
)
def test_bad_interaction_files_are_one_sentence_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        _raw(path)
    assert "\n" not in str(info.value)


def test_min_rating_without_ratings_or_keeping_nothing(tmp_path):
    (tmp_path / "r.csv").write_text("user,item\n1,2\n")
    with pytest.raises(ConfigError, match="needs a rating column"):
        _raw(tmp_path / "r.csv", min_rating=4)
    (tmp_path / "s.csv").write_text("user,item,rating\n1,2,1\n")
    with pytest.raises(DataError, match="lower --min-rating"):
        _raw(tmp_path / "s.csv", min_rating=4)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv", "interactions")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(DataError, match="unsupported extension"):
        read_table(tmp_path / "x.txt", "interactions")


def test_items_file_texts_titles_genres_and_vectors(tmp_path):
    items = pd.DataFrame(
        {
            "item": [1, 2],
            "title": ["Toy Story", "Heat"],
            "year": [1995, 1995],
            "genres": ["Animation|Comedy", None],
        }
    )
    items.to_csv(tmp_path / "items.csv", index=False)
    table = read_items(tmp_path / "items.csv")
    assert table.texts == ["Toy Story. Animation, Comedy", "Heat"]
    assert table.titles == ["Toy Story", "Heat"] and table.genres == ["Animation", "(none)"]
    vec = pd.DataFrame({"item": ["a", "b"], "vector": [[1.0, 0.0], [0.0, 2.0]]})
    vec.to_parquet(tmp_path / "v.parquet")
    table = read_items(tmp_path / "v.parquet", vector_column="vector")
    assert table.texts is None and table.vectors.shape == (2, 2)


def test_bad_items_files(tmp_path):
    pd.DataFrame({"item": [1, 1], "title": ["a", "b"]}).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match="appears more than once"):
        read_items(tmp_path / "dup.csv")
    pd.DataFrame({"item": [1], "year": [1995]}).to_csv(tmp_path / "none.csv", index=False)
    with pytest.raises(DataError, match="--item-text-columns"):
        read_items(tmp_path / "none.csv")
    with pytest.raises(DataError, match="no column 'plot'"):
        read_items(tmp_path / "none.csv", text_columns=["plot"])


def test_catalogue_holds_items_nobody_interacted_with(tmp_path):
    interactions = pd.DataFrame({"user": ["u", "u"], "item": ["b", "zz"]})
    items = pd.DataFrame({"item": ["a", "b"], "vector": [[1.0, 0.0], [0.0, 1.0]]})
    data, catalogue = load_data(interactions, items, ReadOptions(vector_column="vector"))
    assert list(catalogue.ids) == ["a", "b", "zz"]
    assert catalogue.feature_kind == "vectors"
    np.testing.assert_array_equal(catalogue.features[2], [0.0, 0.0])  # not in the items file
    assert any("not in the items file" in n for n in data.notes)
    assert list(data.item_ids[data.items]) == ["b", "zz"]


def test_index_keeps_ids_as_strings_of_whole_numbers():
    frame = pd.DataFrame({"user": [1.0, 2.0], "item": [3.0, 4.0]})
    raw = interactions_from_table(table_from_frame(frame, "frame"))
    data = index_interactions(raw)
    assert list(data.user_ids) == ["1", "2"] and list(data.item_ids) == ["3", "4"]
