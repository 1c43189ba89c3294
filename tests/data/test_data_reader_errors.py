"""Every way a data file can be wrong ends in one DataError naming the file and the place."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from contrastkit.data import read_dataset
from contrastkit.errors import DataError, UserError


def _error(path, **options) -> str:
    """The message of the DataError read_dataset raises; fails if it raises anything else."""
    with pytest.raises(DataError) as info:
        read_dataset(path, **options)
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserError)
    message = str(info.value)
    assert "\n" not in message.strip() and "Traceback" not in message
    return message


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    assert "nope.csv does not exist" in _error(path)


@pytest.mark.parametrize("name", ["e.csv", "e.tsv", "e.jsonl", "e.parquet", "e.npy", "e.npz"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    message = _error(path)
    assert name in message and ("empty" in message or "cannot be read" in message)


def test_whitespace_only_csv_is_empty(tmp_path):
    assert "is empty" in _error(_write(tmp_path, "w.csv", "\n  \n"))


def test_header_only_csv(tmp_path):
    message = _error(_write(tmp_path, "h.csv", "text,label\n"))
    assert "h.csv" in message and "no data rows" in message and "text, label" in message


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "z.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), path)
    assert "no rows" in _error(path)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "c.parquet"
    path.write_bytes(b"this is not parquet at all" * 10)
    message = _error(path)
    assert "c.parquet" in message and "corrupt or truncated" in message


def test_truncated_parquet(tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(
        pa.table({"text": [f"row {i}" for i in range(500)], "label": [1, 2] * 250}), whole
    )
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.parquet.*corrupt or truncated") as info:
        read_dataset(cut)
    assert info.value.__cause__ is not None  # chained to the pyarrow error


@pytest.mark.parametrize("offset", [4, 100, 1500])
def test_parquet_with_damaged_pages(tmp_path, offset):
    whole = tmp_path / "whole.parquet"
    pq.write_table(
        pa.table({"text": [f"row {i}" for i in range(500)], "label": [1, 2] * 250}), whole
    )
    data = bytearray(whole.read_bytes())
    data[offset : offset + 200] = b"\xff" * 200  # header and footer stay intact
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(bytes(data))
    assert "damaged.parquet cannot be read as Parquet" in _error(damaged)


def test_invalid_utf8_names_line_and_suggests_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nfine,a\ncaf\u00e9,b\n".encode("latin-1"))
    message = _error(path)
    assert "latin.csv is not valid UTF-8" in message
    assert "line 3" in message and "0xE9" in message and "re-save" in message


def test_unsupported_extension_lists_supported_ones(tmp_path):
    message = _error(_write(tmp_path, "d.xlsx", "x"))
    assert "d.xlsx" in message and "'.xlsx'" in message
    for ext in (".csv", ".tsv", ".jsonl", ".parquet", ".npy", ".npz"):
        assert ext in message


def test_ragged_csv_row(tmp_path):
    message = _error(_write(tmp_path, "r.csv", "text,label\na,b\nc,d,e\n"))
    assert "r.csv" in message and "line 3" in message


def test_test_split_of_a_single_table(tmp_path):
    assert "no test split" in _error(_write(tmp_path, "t.csv", "text\na\n"), split="test")


# ---------------------------------------------------------------- JSON


def test_malformed_jsonl_line(tmp_path):
    text = '{"text": "a", "label": 1}\n\n{"text": "b", "label": 2\n'
    message = _error(_write(tmp_path, "bad.jsonl", text))
    assert (
        message.startswith("Line 3 of ") and "bad.jsonl" in message and "not valid JSON" in message
    )


def test_jsonl_line_that_is_not_an_object(tmp_path):
    message = _error(_write(tmp_path, "l.jsonl", '{"text": "a"}\n[1, 2]\n'))
    assert "Line 2" in message and "list" in message


def test_jsonl_mixed_label_types_names_an_example_of_each(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 2}, {"text": "c", "label": "two"}]
    path = _write(tmp_path, "m.jsonl", "\n".join(json.dumps(r) for r in rows))
    message = _error(path)
    assert "mixes label types" in message and "m.jsonl" in message
    assert "integer 1 at line 1" in message and "string 'two' at line 3" in message


def test_jsonl_missing_labels(tmp_path):
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": None}, {"text": "c"}]
    message = _error(_write(tmp_path, "n.jsonl", "\n".join(json.dumps(r) for r in rows)))
    assert "2 missing label(s)" in message and "lines 2 and 3" in message


# ---------------------------------------------------------------- columns


def test_missing_explicit_text_column_lists_columns(tmp_path):
    path = _write(tmp_path, "c.csv", "sentence,category\nhi,a\n")
    message = _error(path, text_column="utterance")
    assert "no column 'utterance'" in message and "sentence, category" in message


def test_no_text_column_lists_columns(tmp_path):
    message = _error(_write(tmp_path, "c.csv", "sentence,category\nhi,a\nyo,b\n"))
    assert "no text column 'text'" in message and "columns present: sentence, category" in message


def test_ids_and_sentences_are_not_taken_for_vectors_and_labels(tmp_path):
    message = _error(_write(tmp_path, "c.csv", "id,utterance\n1,hello there\n2,good bye\n"))
    assert "no text column 'text'" in message and "id, utterance" in message


def test_missing_labels_in_parquet(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": ["x", None, "y"]}), path)
    assert "missing label(s) at row 1 (0-based)" in _error(path)


def test_missing_explicit_label_column(tmp_path):
    message = _error(_write(tmp_path, "c.csv", "text,category\nhi,a\n"), label_column="label")
    assert "no column 'label'" in message and "text, category" in message


def test_require_labels_without_label_column(tmp_path):
    message = _error(_write(tmp_path, "c.csv", "text,a,b\nhi,1,2\n"), require_labels=True)
    assert "c.csv has no label column" in message and "text, a, b" in message


def test_require_labels_with_unlabelled_array(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((3, 2)))
    assert "holds no labels" in _error(tmp_path / "v.npy", require_labels=True)


def test_empty_and_whitespace_texts_name_the_lines(tmp_path):
    text = 'text,label\nok,a\n,b\n"   ",a\nfine,b\n"\t",a\n'
    message = _error(_write(tmp_path, "e.csv", text))
    assert "3 empty or whitespace-only" in message and "lines 3, 4 and 6" in message
    assert "Column 'text'" in message and "remove those rows" in message


def test_line_numbers_count_quoted_newlines(tmp_path):
    text = 'text,label\n"two\nlines",a\nok,\n'
    message = _error(_write(tmp_path, "q.csv", text))
    assert "missing label(s) at line 4" in message


def test_missing_labels_in_csv(tmp_path):
    message = _error(_write(tmp_path, "m.csv", "text,label\na,x\nb,\nc, \n"))
    assert "Label column 'label'" in message and "lines 3 and 4" in message


def test_label_column_equal_to_text_column(tmp_path):
    message = _error(_write(tmp_path, "s.csv", "text\na\n"), label_column="text")
    assert "both an input and the labels" in message


# ---------------------------------------------------------------- vectors


def test_non_numeric_value_in_vector_csv(tmp_path):
    path = _write(tmp_path, "v.csv", "f0,f1,label\n1,2,a\n3,x,b\n4,5,a\n")
    message = _error(path)
    assert "Column 'f1'" in message and "'x'" in message and "line 3" in message


def test_nan_and_inf_in_vector_csv_name_the_lines(tmp_path):
    path = _write(tmp_path, "v.csv", "f0,f1\n1,2\nnan,2\n3,4\n1,inf\n")
    message = _error(path)
    assert "NaN or infinite" in message and "lines 3 and 5" in message and "v.csv" in message


def test_nan_in_npy_names_rows(tmp_path):
    x = np.zeros((10, 3))
    x[[2, 7], 1] = np.nan
    np.save(tmp_path / "n.npy", x)
    assert "rows 2 and 7 (0-based)" in _error(tmp_path / "n.npy")


def test_nan_in_parquet_vectors(tmp_path):
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"embedding": [[1.0, 2.0], [float("nan"), 0.0]]}), path)
    assert "row 1 (0-based)" in _error(path)


def test_vectors_of_mixed_length_jsonl(tmp_path):
    rows = [{"vector": [1, 2, 3]}, {"vector": [1, 2, 3]}, {"vector": [1, 2]}]
    message = _error(_write(tmp_path, "v.jsonl", "\n".join(json.dumps(r) for r in rows)))
    assert "mixed lengths" in message and "3 at line 1" in message and "2 at line 3" in message


def test_vectors_of_mixed_length_parquet(tmp_path):
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"embedding": [[1.0, 2.0], [1.0, 2.0], [1.0]]}), path)
    assert re.search(r"mixed lengths: 2 at row 0 .* but 1 at row 2", _error(path))


def test_npy_object_array_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "does not load for safety" in _error(tmp_path / "o.npy")
    (tmp_path / "text.npy").write_text("just some text")
    assert "text.npy is not a plain NumPy array file" in _error(tmp_path / "text.npy")


def test_npy_and_npz_swapped(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.ones((2, 2)))
    (tmp_path / "a.npz").rename(tmp_path / "a.npy")
    assert "is an .npz archive" in _error(tmp_path / "a.npy")
    np.save(tmp_path / "b.npy", np.ones((2, 2)))
    (tmp_path / "b.npy").rename(tmp_path / "b.npz")
    assert "is a single .npy array" in _error(tmp_path / "b.npz")


def test_npy_wrong_shapes(tmp_path):
    np.save(tmp_path / "one.npy", np.ones(5))
    assert "1-D" in _error(tmp_path / "one.npy")
    np.save(tmp_path / "ch.npy", np.ones((2, 4, 4, 5), np.uint8))
    assert "(2, 4, 4, 5)" in _error(tmp_path / "ch.npy")
    np.save(tmp_path / "px.npy", np.full((2, 4, 4), 300))
    assert "from 300 to 300" in _error(tmp_path / "px.npy")


def test_npz_problems(tmp_path):
    np.savez(tmp_path / "k.npz", features=np.ones((2, 2)))
    assert "has no array 'x' or 'x_train' (it holds: features)" in _error(tmp_path / "k.npz")
    np.savez(tmp_path / "s.npz", x=np.ones((2, 2)), y=np.array([0, 1]))
    assert "no array 'x_test'" in _error(tmp_path / "s.npz", split="test")
    np.savez(tmp_path / "n.npz", x=np.ones((3, 2)), y=np.array([0, 1]))
    assert "2 labels for 3 rows" in _error(tmp_path / "n.npz")
    np.savez(tmp_path / "m.npz", x=np.ones((3, 2)), y=np.array([0.0, np.nan, 1.0]))
    assert "at row 1 (0-based)" in _error(tmp_path / "m.npz")


# ---------------------------------------------------------------- image folders


def test_images_of_mixed_shapes_name_two_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "a" / "small.png")
    Image.fromarray(np.zeros((8, 6), np.uint8)).save(tmp_path / "b" / "tall.png")
    message = _error(tmp_path)
    assert "differ in size" in message and "small.png is (4, 6)" in message
    assert "tall.png is (8, 6)" in message


def test_folder_without_class_subfolders(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "loose.png")
    assert "holds no class sub-folders" in _error(tmp_path)


def test_class_folder_without_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a" / "x.png")
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    message = _error(tmp_path)
    assert "Class folder" in message and "holds no images" in message and "b" in message


def test_unreadable_image(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    assert "broken.png cannot be read" in _error(tmp_path)
