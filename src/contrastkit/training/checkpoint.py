"""Checkpoints: tensors in safetensors, everything else in JSON, written atomically with checksums.

Layout of a checkpoint folder:

    checkpoints/
      epoch-0003/tensors.safetensors   model, optimiser and RNG tensors
      epoch-0003/state.json            counters, history, schedule, sampler, RNG, sha256 of the tensors
      latest.json                      {"name": "epoch-0003", "state_sha256": ...}

A checkpoint folder is written under a temporary name and renamed into place, and
`latest.json` is replaced atomically afterwards, so a run killed at any moment leaves either
the previous or the new checkpoint, never half of one. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from contrastkit.errors import UserError
from contrastkit.io.atomic import (
    atomic_folder,
    default_mode,
    fsync_file,
    sha256_file,
    write_json_atomic,
)

TENSORS = "tensors.safetensors"
STATE = "state.json"
LATEST = "latest.json"


class CheckpointError(UserError):
    """A checkpoint is missing, truncated or altered."""


def save_checkpoint(
    root: str | Path, name: str, tensors: dict[str, torch.Tensor], state: dict, keep: int = 2
) -> Path:
    """Write checkpoint `name` under `root` atomically and point `latest.json` at it."""
    root = Path(root)
    final = root / name
    with atomic_folder(final) as tmp:
        flat = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        save_file(flat, str(tmp / TENSORS))
        os.chmod(tmp / TENSORS, default_mode())  # safetensors creates it 0600
        fsync_file(tmp / TENSORS)
        state = dict(state, tensors_sha256=sha256_file(tmp / TENSORS))
        write_json_atomic(tmp / STATE, state)
    write_json_atomic(root / LATEST, {"name": name, "state_sha256": sha256_file(final / STATE)})
    _prune(root, keep)
    return final


def load_latest(root: str | Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The latest checkpoint under `root` (tensors, state), None when there is none yet.

    Raises CheckpointError when the checkpoint exists but is truncated or altered.
    """
    root = Path(root)
    pointer = root / LATEST
    if not pointer.exists():
        return None
    try:
        latest = json.loads(pointer.read_text(encoding="utf-8"))
        folder = root / latest["name"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise CheckpointError(
            f"{pointer} is damaged; delete the run folder's checkpoints/ to start over"
        ) from None
    return load_checkpoint(folder, expected_state_sha256=latest.get("state_sha256"))


def load_checkpoint(
    folder: str | Path, expected_state_sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    folder = Path(folder)
    state_path, tensors_path = folder / STATE, folder / TENSORS
    for path in (state_path, tensors_path):
        if not path.is_file():
            raise CheckpointError(
                f"checkpoint file {path} is missing; the checkpoint cannot be used"
            )
    if expected_state_sha256 and sha256_file(state_path) != expected_state_sha256:
        raise CheckpointError(
            f"checkpoint file {state_path} was altered or truncated (checksum mismatch)"
        )
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(
            f"checkpoint file {state_path} is not valid JSON (truncated?)"
        ) from None
    if sha256_file(tensors_path) != state.get("tensors_sha256"):
        raise CheckpointError(
            f"checkpoint file {tensors_path} was altered or truncated (checksum mismatch)"
        )
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"checkpoint file {tensors_path} cannot be read: {exc}") from None
    return tensors, state


def _prune(root: Path, keep: int) -> None:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("epoch-"))
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
