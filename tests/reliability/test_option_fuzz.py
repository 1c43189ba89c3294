"""Property test of the command line: `refine`, `embed` and `evaluate` driven with random
combinations of option values (negative, zero, huge, NaN, wrong type, empty string, valid)
and malformed small files. Whatever the combination: exit code 0 or 2, never a traceback,
never `nan` printed (except when the user's own argument was "nan" and it was refused), and a
successful run writes only finite numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.config.options import OPTIONS

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Valid values are repeated so that about half the examples run to the end.
INT_VALUES = ["-1", "0", str(10**12), "abc", "", "nan", "1.5", *["1", "2", "3", "8"] * 4]
FLOAT_VALUES = ["-1", "0", "1e12", "nan", "inf", "abc", "", "1e-30", *["0.05", "0.1", "0.5"] * 5]
STRING_VALUES = [
    "",
    "abc",
    "cuda:9",
    "mps",
    "clip",
    *["cpu", "supcon", "simclr", "ce", "triplet"] * 2,
]
# Options whose valid values could make one example take long: kept small.
SMALL = {"epochs": ["1", "2", "0", "-3", str(10**12), "x"]}


def _files(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 4)).astype(np.float32)
    y = np.arange(24) % 3
    files = {"vectors": root / "v.npz", "one_dim": root / "w1.npz"}
    np.savez(files["vectors"], x=x, y=y)
    np.savez(files["one_dim"], x=x[:, :1], y=y)
    bad = dict(x=x.copy(), y=y)
    bad["x"][3, 1] = np.nan
    np.savez(root / "nan.npz", **bad)
    np.savez(root / "zero.npz", x=np.zeros((24, 4), np.float32), y=y)
    np.savez(root / "rank3.npz", x=x[:, None, :], y=y)
    np.save(root / "flat.npy", x[:, 0])
    texts = {
        "empty.csv": "",
        "header_only.csv": "text,label\n",
        "one_class.csv": "text,label\nhi,a\nho,a\nhu,a\n",
        "semicolon.csv": "text;label\n" + "".join(f"row {i}, more;{i % 2}\n" for i in range(12)),
        "dup_header.csv": "text,label,label\na,1,2\nb,2,1\n",
        "missing.csv": "text,label\nhello,1\nworld,\nagain,0\nmore,1\n",
        "wrong.txt": "not a table",
    }
    for name, text in texts.items():
        (root / name).write_text(text)
    (root / "latin1.csv").write_bytes("text,label\ncaf\xe9,1\nthe,0\n".encode("latin-1"))
    files.update({p.stem: p for p in root.iterdir() if p.suffix in (".csv", ".txt", ".npy")})
    files.update({p.stem: p for p in root.glob("*.npz")})
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return _files(tmp_path_factory.mktemp("fuzz-data"))


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz-run") / "run"
    result = _invoke(["refine", "--train", files["vectors"], "--out", out, "--epochs", "1",
                      "--quiet", "--no-report"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _invoke(args: list):
    return CliRunner().invoke(app, [str(a) for a in args])


def _check(result, args: list) -> None:
    """Exit 0 or 2, no traceback, no nan unless refusing the user's own "nan"."""
    text = result.stdout + result.stderr
    event(f"{args[0]} exit {result.exit_code}")  # --hypothesis-show-statistics counts them
    assert result.exit_code in (0, 2), (args, text)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, text)
    assert "Traceback" not in text, (args, text)
    echoed = result.exit_code == 2 and any("nan" in str(a).lower() for a in args)
    assert echoed or not re.search(r"\bnan\b", text, re.IGNORECASE), (args, text)


def _option_args(draw) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(OPTIONS), max_size=2, unique_by=lambda o: o.name))
    args: list[str] = []
    for option in chosen:
        if option.type is bool:
            args.append(draw(st.sampled_from([option.flag, f"--no-{option.flag[2:]}"])))
            continue
        values = SMALL.get(option.name) or {int: INT_VALUES, float: FLOAT_VALUES}.get(
            option.type, STRING_VALUES
        )
        args += [option.flag, draw(st.sampled_from(values))]
    if not any(o.name == "epochs" for o in chosen):
        args += ["--epochs", "1"]
    return args


@FUZZ
@given(data=st.data())
def test_refine_with_random_options_and_files(files, tmp_path_factory, data):
    good = ["vectors", "one_dim", "semicolon"] * 4  # the malformed files, a third of the time
    train = data.draw(st.sampled_from(sorted(files) + good), label="train file")
    args = ["refine", "--train", files[train], "--out", tmp_path_factory.mktemp("r") / "run",
            "--quiet", "--no-report", *_option_args(data.draw)]  # fmt: skip
    if data.draw(st.integers(0, 3), label="with --test") == 0:
        args += ["--test", files[data.draw(st.sampled_from(sorted(files) + good), label="test")]]
    result = _invoke(args)
    _check(result, args)
    if result.exit_code == 0:
        out = Path(args[args.index("--out") + 1])
        json.loads((out / "metrics.json").read_text(), parse_constant=_no_constants)
        Z = np.asarray(pq.read_table(out / "embeddings.parquet").column("embedding").to_pylist())
        assert np.isfinite(Z).all()


def _no_constants(name: str):
    raise AssertionError(f"metrics.json holds {name}")


@FUZZ
@given(data=st.data())
def test_embed_with_random_inputs_and_outputs(files, trained, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("e")
    (folder / "existing.parquet").write_bytes(b"keep")
    source = files[data.draw(st.sampled_from(sorted(files) + ["vectors"] * 8))]
    out = data.draw(st.sampled_from([folder / "new.parquet", folder / "new.npy", folder / "x.txt",
                                     folder / "existing.parquet", source, folder,
                                     trained / "model" / "inside.npy"]))  # fmt: skip
    flags = data.draw(st.lists(st.sampled_from(["--base", "--overwrite"]), unique=True))
    args = ["embed", "--model", trained / "model", "--input", source, "--out", out, *flags]
    result = _invoke(args)
    _check(result, args)
    if out == folder / "existing.parquet" and "--overwrite" not in flags:
        assert out.read_bytes() == b"keep"
    assert source.exists()


def _parquet_variants(run: Path, folder: Path) -> dict[str, Path]:
    table = pq.read_table(run / "embeddings.parquet").to_pydict()
    variants = {"good": run / "embeddings.parquet"}
    for name, change in {
        "nan": lambda Z: Z.__setitem__((2, 0), np.nan),
        "zero": lambda Z: Z.__setitem__(3, 0.0),
    }.items():
        Z = np.asarray(table["embedding"], np.float32)
        change(Z)
        import pyarrow as pa

        path = folder / f"{name}.parquet"
        pq.write_table(pa.table({**table, "embedding": Z.tolist()}), path)
        variants[name] = path
    (folder / "garbage.parquet").write_bytes(b"PAR1 not really")
    variants["garbage"] = folder / "garbage.parquet"
    return variants


@FUZZ
@given(data=st.data())
def test_evaluate_with_random_embeddings_and_models(files, trained, tmp_path_factory, data):
    variants = _parquet_variants(trained, tmp_path_factory.mktemp("ev"))
    if data.draw(st.booleans(), label="from embeddings"):
        pick = st.sampled_from(sorted(variants) + ["good"] * 3)
        args = ["evaluate", "--embeddings", variants[data.draw(pick)]]
    else:
        pick = st.sampled_from(sorted(files) + ["vectors"] * 8)
        args = ["evaluate", "--model", trained / "model",
                "--train", files[data.draw(pick)], "--test", files[data.draw(pick)]]  # fmt: skip
    _check(_invoke(args), args)
