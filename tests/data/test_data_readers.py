"""read_dataset on real files and on files written here, checked against independent readers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from contrastkit.data import SUPPORTED_EXTENSIONS, Dataset, has_split, read_dataset


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- real data


def test_banking77_labels_come_from_the_only_other_column(shared_file):
    path = shared_file("banking77", "train.csv")
    expected = _csv_rows(path)
    data = read_dataset(path)
    assert isinstance(data, Dataset)
    assert data.kind == "text" and data.format == "csv"
    assert data.source == str(path)
    assert data.text_column == "text" and data.label_column == "category"
    assert len(data) == len(expected) == 10003
    assert data.inputs == [row["text"] for row in expected]
    assert data.labels.tolist() == [row["category"] for row in expected]
    assert len(set(data.labels)) == 77


def test_banking77_explicit_columns_and_require_labels(shared_file):
    path = shared_file("banking77", "test.csv")
    data = read_dataset(path, text_column="text", label_column="category", require_labels=True)
    assert len(data) == 3080 and data.labels is not None


def test_stsb_sentence_pairs_with_scores(shared_file):
    path = shared_file("stsb", "dev.csv")
    expected = _csv_rows(path)
    auto = read_dataset(path)
    given = read_dataset(path, pair_columns=("sentence1", "sentence2"))
    for data in (auto, given):
        assert data.kind == "pairs" and data.pair_columns == ("sentence1", "sentence2")
        assert data.inputs == [(r["sentence1"], r["sentence2"]) for r in expected]
        assert data.label_column == "score" and data.labels.dtype == np.float64
        np.testing.assert_allclose(data.labels, [float(r["score"]) for r in expected])


def test_fashion_mnist_train_split(fashion_mnist_train, fashion_mnist_path):
    data = fashion_mnist_train
    assert data.kind == "images" and data.split == "train"
    assert data.inputs.shape == (60000, 28, 28) and data.inputs.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.label_column == "y_train"
    assert np.bincount(data.labels).tolist() == [6000] * 10
    with np.load(fashion_mnist_path) as raw:
        np.testing.assert_array_equal(data.inputs[::997], raw["x_train"][::997])
        np.testing.assert_array_equal(data.labels, raw["y_train"])


def test_fashion_mnist_test_split(fashion_mnist_path):
    assert has_split(fashion_mnist_path, "test") and has_split(fashion_mnist_path, "train")
    assert not has_split(fashion_mnist_path, "valid")
    data = read_dataset(fashion_mnist_path, split="test")
    assert data.inputs.shape == (10000, 28, 28) and len(data.labels) == 10000


# ---------------------------------------------------------------- tables written here


def test_tsv_matches_csv(tmp_path):
    rows = [("a first text", "x"), ("  keeps its spaces ", "y"), ('a "quoted" one', "x")]
    csv_path, tsv_path = tmp_path / "d.csv", tmp_path / "d.tsv"
    for path, sep in ((csv_path, ","), (tsv_path, "\t")):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter=sep)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    a, b = read_dataset(csv_path), read_dataset(tsv_path)
    assert a.inputs == b.inputs == [t for t, _ in rows]  # texts are kept as given
    assert a.labels.tolist() == b.labels.tolist() == ["x", "y", "x"]
    assert b.format == "tsv"


def test_csv_integer_labels_become_int64_and_bom_is_ignored(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufefftext,label\nhello,2\nworld,10\n".encode())
    data = read_dataset(path)
    assert data.text_column == "text"
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [2, 10]


def test_label_column_rules(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,text,label\n1,a,x\n2,b,y\n", encoding="utf-8")
    assert read_dataset(path).label_column == "label"
    path.write_text("id,text,topic\n1,a,x\n2,b,y\n", encoding="utf-8")
    assert read_dataset(path).labels is None  # two other columns: no guess
    assert read_dataset(path, label_column="topic").labels.tolist() == ["x", "y"]
    path.write_text(",text,topic\n0,a,x\n1,b,y\n", encoding="utf-8")  # a saved pandas index
    assert read_dataset(path).label_column == "topic"
    path.write_text("text\na\nb\n", encoding="utf-8")
    assert read_dataset(path).labels is None


def test_jsonl_with_blank_lines_and_int_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    records = [{"text": "one", "label": 1}, {"text": "two", "label": 0, "extra": [1]}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    data = read_dataset(path)
    assert data.inputs == ["one", "two"] and data.format == "jsonl"
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [1, 0]


def test_json_list_of_objects(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": "a", "label": "p"}, {"text": "b", "label": "q"}]))
    data = read_dataset(path)
    assert data.inputs == ["a", "b"] and data.labels.tolist() == ["p", "q"]


def test_jsonl_embedding_lists_are_vectors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"embedding": v.tolist(), "label": f"c{i % 2}"}) for i, v in enumerate(x)]
    path.write_text("\n".join(lines), encoding="utf-8")
    data = read_dataset(path)
    assert data.kind == "vectors" and data.vector_column == "embedding"
    np.testing.assert_array_equal(data.inputs, x)
    assert data.labels.tolist() == ["c0", "c1", "c0", "c1", "c0"]


@pytest.mark.parametrize("fixed", [False, True])
def test_parquet_embedding_column(tmp_path, fixed):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    kind = pa.list_(pa.float32(), 4) if fixed else pa.list_(pa.float32())
    table = pa.table(
        {"vector": pa.array(x.tolist(), type=kind), "label": pa.array([3, 1, 3, 1, 2, 2])}
    )
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    data = read_dataset(path)
    assert data.kind == "vectors" and data.format == "parquet"
    assert data.inputs.dtype == np.float32
    np.testing.assert_array_equal(data.inputs, x)
    assert data.labels.tolist() == [3, 1, 3, 1, 2, 2]


def test_parquet_texts(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "intent": ["x", "y"]}), path)
    data = read_dataset(path)
    assert data.inputs == ["a", "b"] and data.label_column == "intent"


def test_numeric_csv_is_vectors_with_the_string_column_as_labels(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 3))
    path = tmp_path / "v.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["f0", "f1", "f2", "kind"])
        for i, row in enumerate(x):
            writer.writerow([repr(float(v)) for v in row] + ["ab"[i % 2]])
    data = read_dataset(path)
    assert data.kind == "vectors" and data.feature_columns == ["f0", "f1", "f2"]
    np.testing.assert_allclose(data.inputs, x.astype(np.float32))
    assert data.label_column == "kind" and data.labels.tolist() == ["a", "b", "a", "b"]


def test_numeric_csv_without_labels_and_with_label_column(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("a,b\n1,2\n3,4.5\n")
    data = read_dataset(path)
    assert data.kind == "vectors" and data.labels is None
    np.testing.assert_array_equal(data.inputs, [[1, 2], [3, 4.5]])
    path.write_text("a,b,label\n1,2,0\n3,4.5,1\n")
    data = read_dataset(path)
    assert data.feature_columns == ["a", "b"] and data.labels.tolist() == [0, 1]


def test_csv_vector_column_of_json_lists(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text('emb,label\n"[1, 2]",x\n"[3, 4]",y\n')
    data = read_dataset(path, vector_column="emb")
    np.testing.assert_array_equal(data.inputs, [[1, 2], [3, 4]])
    assert data.labels.tolist() == ["x", "y"]


# ---------------------------------------------------------------- arrays


def test_npy_vectors_become_float32(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.save(tmp_path / "v.npy", x)
    data = read_dataset(tmp_path / "v.npy")
    assert data.kind == "vectors" and data.inputs.dtype == np.float32 and data.labels is None
    np.testing.assert_array_equal(data.inputs, x)


def test_npy_images_channels_first_and_single_channel(tmp_path):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(2, 5, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "cf.npy", np.moveaxis(rgb, -1, 1))  # (n, 3, h, w)
    np.testing.assert_array_equal(read_dataset(tmp_path / "cf.npy").inputs, rgb)
    np.save(tmp_path / "one.npy", rgb[..., :1])
    data = read_dataset(tmp_path / "one.npy")
    assert data.kind == "images" and data.inputs.shape == (2, 5, 6)
    np.save(tmp_path / "f.npy", rgb.astype(np.float64) / 255)
    assert read_dataset(tmp_path / "f.npy").inputs.dtype == np.float32
    np.save(tmp_path / "i.npy", rgb.astype(np.int64))
    np.testing.assert_array_equal(read_dataset(tmp_path / "i.npy").inputs, rgb)


def test_npy_strings_are_texts(tmp_path):
    np.save(tmp_path / "t.npy", np.array(["a b", "c"]))
    data = read_dataset(tmp_path / "t.npy")
    assert data.kind == "text" and data.inputs == ["a b", "c"]


def test_npz_x_y_and_string_labels(tmp_path):
    x = np.ones((3, 2), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.array(["b", "a", "b"]))
    data = read_dataset(tmp_path / "d.npz")
    assert data.kind == "vectors" and data.labels.tolist() == ["b", "a", "b"]
    assert not has_split(tmp_path / "d.npz", "test")
    np.savez(tmp_path / "f.npz", x=x, y=np.array([1.0, 0.0, 1.0]))
    assert read_dataset(tmp_path / "f.npz").labels.dtype == np.int64  # integral floats


# ---------------------------------------------------------------- image folders


def _write_images(root, layout, mode="L", size=(6, 4), ext="png", seed=0):
    """Write random images; returns {relative path: array} of what was written."""
    rng = np.random.default_rng(seed)
    written = {}
    channels = (3,) if mode == "RGB" else ()
    for label, count in layout.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(size[1], size[0], *channels), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / label / f"img{i}.{ext}")
            written[f"{label}/img{i}.{ext}"] = pixels
    return written


def test_image_folder_grayscale(tmp_path):
    written = _write_images(tmp_path, {"cat": 2, "dog": 3})
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    data = read_dataset(tmp_path)
    assert data.kind == "images" and data.format == "images"
    assert data.inputs.shape == (5, 4, 6) and data.inputs.dtype == np.uint8
    assert data.labels.tolist() == ["cat", "cat", "dog", "dog", "dog"]
    assert data.files == sorted(written)
    for i, name in enumerate(data.files):
        np.testing.assert_array_equal(data.inputs[i], written[name])


def test_image_folder_rgb_bmp_and_mixed_modes(tmp_path):
    written = _write_images(tmp_path, {"a": 2}, mode="RGB", ext="bmp")
    gray = _write_images(tmp_path, {"b": 1}, mode="L", ext="png", seed=5)
    data = read_dataset(tmp_path)
    assert data.inputs.shape == (3, 4, 6, 3)  # one colour image makes all of them RGB
    np.testing.assert_array_equal(data.inputs[0], written["a/img0.bmp"])
    np.testing.assert_array_equal(data.inputs[2], np.repeat(gray["b/img0.png"][..., None], 3, -1))


def test_image_folder_with_train_and_test(tmp_path):
    _write_images(tmp_path / "train", {"x": 2, "y": 2})
    _write_images(tmp_path / "test", {"x": 1, "y": 1}, ext="gif")
    assert has_split(tmp_path, "test") and not has_split(tmp_path / "train", "test")
    assert len(read_dataset(tmp_path)) == 4
    test = read_dataset(tmp_path, split="test")
    assert len(test) == 2 and test.labels.tolist() == ["x", "y"] and test.source == str(tmp_path)


def test_supported_extensions_listed():
    assert set(SUPPORTED_EXTENSIONS) >= {".csv", ".tsv", ".jsonl", ".parquet", ".npy", ".npz"}
