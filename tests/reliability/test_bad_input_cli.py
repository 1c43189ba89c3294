"""Bad input through `contrastkit refine`: every case ends with exit code 2 and one `error:` line
naming the file, line, row, column or flag and what to do; no traceback; and a refused command
writes nothing (the run folder is not even created)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import assert_refused, run_refine, snapshot

Build = Callable[[Path], list[str]]  # writes the case's files into a folder, returns the flags


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    fragments: tuple[str, ...]


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _vectors_npz(folder: Path, rows: int = 60, dim: int = 8, classes: int = 3) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    np.savez(folder / "vectors.npz", x=x, y=np.arange(rows) % classes)
    return folder / "vectors.npz"


def _texts_csv(folder: Path) -> Path:
    rows = "".join(f"message number {i},{'ab'[i % 2]}\n" for i in range(12))
    return _write(folder, "texts.csv", "text,label\n" + rows)


def _parquet(folder: Path) -> bytes:
    import pandas as pd

    frame = pd.DataFrame({"text": [f"row {i}" for i in range(40)], "label": [0, 1] * 20})
    frame.to_parquet(folder / "good.parquet")
    return (folder / "good.parquet").read_bytes()


def _images(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    from PIL import Image

    root = folder / "images"
    for i, (h, w) in enumerate(sizes):
        (root / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((h, w), np.uint8)).save(root / f"class{i % 2}" / f"img{i}.png")
    return root


def _jsonl(folder: Path, name: str, records: list[str]) -> Path:
    return _write(folder, name, "\n".join(records) + "\n")


def _config(folder: Path, text: str) -> Path:
    return _write(folder, "run.yaml", text)


CASES = [
    Case(
        "missing file",
        lambda d: ["--train", str(d / "absent.csv")],
        ("absent.csv", "does not exist", "check the path"),
    ),
    Case(
        "empty file",
        lambda d: ["--train", str(_write(d, "empty.csv", ""))],
        ("empty.csv", "is empty"),
    ),
    Case(
        "header only",
        lambda d: ["--train", str(_write(d, "header.csv", "text,label\n"))],
        ("header.csv", "header", "no data rows"),
    ),
    Case(
        "corrupt parquet",
        lambda d: ["--train", str(_write(d, "corrupt.parquet", b"PAR1" + b"\x00garbage" * 9))],
        ("corrupt.parquet", "corrupt or truncated", "export it again"),
    ),
    Case(
        "truncated parquet",
        lambda d: ["--train", str(_write(d, "cut.parquet", _parquet(d)[:300]))],
        ("cut.parquet", "corrupt or truncated"),
    ),
    Case(
        "invalid UTF-8 in a CSV",
        lambda d: [
            "--train",
            str(_write(d, "latin.csv", b"text,label\nok,a\ncaf\xe9 au lait,b\n")),
        ],
        ("latin.csv", "not valid UTF-8", "line 3", "re-save the file as UTF-8"),
    ),
    Case(
        "malformed JSONL line",
        lambda d: [
            "--train",
            str(_jsonl(d, "rows.jsonl", ['{"text": "a", "label": 1}', '{"text": "b", label: 2}'])),
        ],
        ("line 2 of .*rows.jsonl", "not valid JSON", "fix or remove that line"),
    ),
    Case(
        "missing text column (given)",
        lambda d: ["--train", str(_texts_csv(d)), "--text-column", "sentence"],
        ("texts.csv", "no column 'sentence'", "columns present: text, label"),
    ),
    Case(
        "no text column at all",
        lambda d: ["--train", str(_write(d, "odd.csv", "sentence,intent\nhi,a\nyo,b\n"))],
        ("odd.csv", "columns present: sentence, intent", "text_column"),
    ),
    Case(
        "missing label column (given)",
        lambda d: ["--train", str(_texts_csv(d)), "--label-column", "intent"],
        ("texts.csv", "no column 'intent'", "columns present: text, label"),
    ),
    Case(
        "no label column for a supervised method",
        lambda d: ["--train", str(_write(d, "unlabelled.csv", "text\nhello\nworld\n"))],
        ("unlabelled.csv", "no label column", "columns present: text"),
    ),
    Case(
        "NaN and inf in CSV vectors",
        lambda d: [
            "--train",
            str(_write(d, "vec.csv", "a,b,label\n1,2,x\n3,nan,y\n5,6,x\n7,inf,y\n")),
        ],
        ("vec.csv", "NaN or infinite", "lines 3 and 5"),
    ),
    Case(
        "NaN in an NPY array",
        lambda d: [
            "--train",
            str(_npy_with_nan(d)),
        ],
        ("nan.npy", "NaN or infinite", r"rows 2 and 5 \(0-based\)"),
    ),
    Case(
        "vectors of mixed length",
        lambda d: [
            "--train",
            str(
                _jsonl(
                    d,
                    "vec.jsonl",
                    ['{"embedding": [1, 2, 3], "label": 0}', '{"embedding": [1, 2], "label": 1}'],
                )
            ),
        ],
        ("vec.jsonl", "mixed lengths", "3 at line 1", "2 at line 2"),
    ),
    Case(
        "images of mixed shapes",
        lambda d: ["--train", str(_images(d, [(8, 8), (8, 8), (9, 8)]))],
        ("images", "differ in size", "img0.png", "img2.png", "resize"),
    ),
    Case(
        "one class only",
        lambda d: ["--train", str(_write(d, "one.csv", "text,label\nhi,a\nho,a\nhu,a\n"))],
        ("one class only", "'a'", "at least two classes"),
    ),
    Case(
        "empty text",
        lambda d: ["--train", str(_write(d, "gaps.csv", 'text,label\nhi,a\n"",b\nho,a\n'))],
        ("gaps.csv", "column 'text'", "empty or whitespace-only", "line 3", "remove those rows"),
    ),
    Case(
        "whitespace-only text",
        lambda d: [
            "--train",
            str(
                _jsonl(
                    d, "ws.jsonl", ['{"text": "hi", "label": 0}', '{"text": " \\t ", "label": 1}']
                )
            ),
        ],
        ("ws.jsonl", "whitespace-only", "line 2"),
    ),
    Case(
        "labels of mixed types",
        lambda d: [
            "--train",
            str(
                _jsonl(
                    d, "mixed.jsonl", ['{"text": "a", "label": 1}', '{"text": "b", "label": "one"}']
                )
            ),
        ],
        ("mixed.jsonl", "mixes label types", "line 1", "line 2", "same type"),
    ),
    Case(
        "test labels of another type than the training labels",
        lambda d: [
            "--train",
            str(_texts_csv(d)),
            "--test",
            str(_write(d, "test.csv", "text,label\nfoo,1\nbar,2\n")),
        ],
        ("test labels are numbers", "training labels are strings"),
    ),
    Case(
        "test data of another kind than the training data",
        lambda d: ["--train", str(_vectors_npz(d)), "--test", str(_texts_csv(d))],
        ("texts.csv", "holds text", "training data holds vectors"),
    ),
    Case(
        "--epochs 0",
        lambda d: ["--train", str(_vectors_npz(d)), "--epochs", "0"],
        ("--epochs", "greater than or equal to 1"),
    ),
    Case(
        "--batch-size 1",
        lambda d: ["--train", str(_vectors_npz(d)), "--batch-size", "1"],
        ("--batch-size", "greater than or equal to 2"),
    ),
    Case(
        "NaN learning rate",
        lambda d: ["--train", str(_vectors_npz(d)), "--lr", "nan"],
        ("--lr", "finite number"),
    ),
    Case(
        "unknown method",
        lambda d: ["--train", str(_vectors_npz(d)), "--method", "supercon"],
        ("unknown method 'supercon'", "choose one of", "supcon"),
    ),
    Case(
        "an option the method does not take",
        lambda d: ["--train", str(_vectors_npz(d)), "--method", "supcon", "--margin", "0.3"],
        ("--margin is not an option of method supcon", "--temperature"),
    ),
    Case(
        "unknown option in the config file",
        lambda d: ["--train", str(_vectors_npz(d)), "--config", str(_config(d, "epoch: 3\n"))],
        ("config file .*run.yaml, key 'epoch': unknown option 'epoch'", "did you mean 'epochs'"),
    ),
    Case(
        "config file that is not YAML",
        lambda d: ["--train", str(_vectors_npz(d)), "--config", str(_config(d, "epochs: [3\n"))],
        ("run.yaml", "not valid YAML", r"at line \d+, column \d+"),
    ),
    Case(
        "a mode that does not apply to the data",
        lambda d: ["--train", str(_vectors_npz(d)), "--mode", "finetune"],
        ("mode finetune does not apply to vectors", "use mode adapter"),
    ),
    Case(
        "--resume with --overwrite",
        lambda d: ["--train", str(_vectors_npz(d)), "--resume", "--overwrite"],
        ("--resume and --overwrite", "one of them"),
    ),
]


def _npy_with_nan(folder: Path) -> Path:
    x = np.ones((8, 4), np.float32)
    x[2, 1], x[5, 3] = np.nan, -np.inf
    np.save(folder / "nan.npy", x)
    return folder / "nan.npy"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_with_one_clear_line_and_nothing_written(case, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "run"
    result = run_refine(*case.build(data), "--out", out)
    assert_refused(result, *case.fragments)
    assert not out.exists(), "a refused command must not create the run folder"


def test_an_output_path_under_a_file_is_not_writable(tmp_path):
    blocker = _write(tmp_path, "not-a-folder", "x")
    result = run_refine("--train", _vectors_npz(tmp_path), "--out", blocker / "run")
    assert_refused(result, "cannot write to the run folder", "not-a-folder/run", "writable --out")
    assert blocker.read_text() == "x"


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    target = _write(tmp_path, "results.txt", "keep me")
    result = run_refine("--train", _vectors_npz(tmp_path), "--out", target)
    assert_refused(result, "results.txt is a file, not a folder", "choose another path")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    "flags, fragments",
    [
        ([], ("already exists", "--resume", "--overwrite", "nothing in it was touched")),
        (["--epochs", "0"], ("already exists",)),  # the folder is checked first
        (["--overwrite", "--epochs", "0"], ("--epochs",)),  # --overwrite deletes only when valid
        (["--overwrite", "--train", "absent.csv"], ("absent.csv", "does not exist")),
        (["--resume", "--epochs", "5"], ("--epochs 5 differs from the resumed run's 2",)),
    ],
    ids=["plain", "bad option", "overwrite with bad option", "overwrite with bad data", "resume"],
)
def test_an_existing_run_folder_is_refused_and_left_untouched(tmp_path, flags, fragments):
    data = _vectors_npz(tmp_path)
    out = tmp_path / "run"
    first = run_refine("--train", data, "--out", out, "--epochs", "2")
    assert first.exit_code == 0, first.stderr
    before = snapshot(out)
    args = ["--train", data, "--out", out, "--epochs", "2"]
    for flag in flags:  # later flags win (typer keeps the last value of a repeated option)
        args.append(flag)
    result = run_refine(*args)
    assert_refused(result, *fragments)
    assert snapshot(out) == before


def test_a_run_refused_for_its_data_can_be_rerun_without_overwrite(tmp_path):
    """A command refused after the run folder existed (empty) leaves it reusable as it was."""
    out = tmp_path / "run"
    out.mkdir()
    bad = _write(tmp_path, "one.csv", "text,label\nhi,a\nho,a\n")
    assert_refused(run_refine("--train", bad, "--out", out), "one class only")
    assert list(out.iterdir()) == []
    good = run_refine("--train", _vectors_npz(tmp_path), "--out", out, "--epochs", "2")
    assert good.exit_code == 0, good.stderr
    assert json.loads((out / "metrics.json").read_text())["after"]


def test_single_row_classes_warn_and_still_train(tmp_path):
    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    y[[0, 1]] = [7, 8]  # two classes of one row each
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(60, 8)).astype(np.float32), y=y)
    result = run_refine("--train", tmp_path / "d.npz", "--out", tmp_path / "run", "--epochs", "2")
    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "2 classes have a single row" in warning[0]
    assert "add rows to them" in warning[0]
    assert (tmp_path / "run" / "embeddings.parquet").is_file()


def test_a_batch_size_larger_than_the_data_warns_and_uses_all_rows(tmp_path):
    out = tmp_path / "run"
    result = run_refine(
        "--train", _vectors_npz(tmp_path), "--out", out, "--epochs", "2", "--batch-size", "1000"
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "warning: --batch-size 1000 is larger than the 54 training rows; using batches of 54"
        in (result.stderr)
    )
    resolved = json.loads((out / "metrics.json").read_text())["config"]["resolved"]
    assert resolved["batch_size"] == 54


def test_a_label_with_brackets_is_printed_as_written(tmp_path):
    """The error line is plain text: a "[name]" in a message is not eaten as rich markup."""
    result = run_refine(
        "--train", _texts_csv(tmp_path), "--text-column", "[embedding]", "--out", tmp_path / "r"
    )
    assert_refused(result, r"no column '\[embedding\]'")


def test_typer_usage_errors_exit_2_with_a_clear_message(tmp_path):
    result = run_refine("--train", _vectors_npz(tmp_path), "--out", tmp_path / "r", "--bogus", "1")
    assert result.exit_code == 2 and result.exception is None
    assert "No such option: --bogus" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()
