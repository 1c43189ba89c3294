"""Checkpoints: tensors in safetensors, everything else in JSON, written atomically with checksums.

Layout of a checkpoint folder:

    checkpoints/
      epoch-0003/tensors.safetensors   model, optimiser and RNG tensors
      epoch-0003/state.json            counters, schedule, sampler, RNG, sha256 of the tensors
      latest.json                      {"name": "epoch-0003", "state_sha256": ...}
      history.jsonl                    one line per epoch (loss, lr, validation score...)

The history grows by one line an epoch instead of being copied into every checkpoint, so a
checkpoint's size and cost stay the same however long the run; lines of epochs after the
latest checkpoint (a run killed between the two writes) are dropped on resume.

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
    write_bytes_atomic,
    write_json_atomic,
)

HISTORY = "history.jsonl"
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


def append_history(root: str | Path, row: dict) -> None:
    """Add one epoch's row to the run's history (flushed to disk before the checkpoint)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / HISTORY, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True, allow_nan=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_history(root: str | Path, up_to_epoch: int, *, rewrite: bool = True) -> list[dict]:
    """The history rows of epochs 1..up_to_epoch; with `rewrite` (the process that writes the
    checkpoints) the file is rewritten to hold just them: a row written after the latest
    checkpoint, or cut short by a kill, is dropped before the run appends again."""
    path = Path(root) / HISTORY
    rows: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if isinstance(row, dict) and isinstance(row.get("epoch"), int):
                rows[row["epoch"]] = row
    kept = [rows[e] for e in sorted(rows) if e <= up_to_epoch]
    if len(kept) != up_to_epoch:
        raise CheckpointError(
            f"{path} holds {len(kept)} of the {up_to_epoch} epochs of the checkpoint; the run "
            "folder is damaged: start again with --overwrite"
        )
    if rewrite:
        text = "".join(json.dumps(r, sort_keys=True, allow_nan=True) + "\n" for r in kept)
        write_bytes_atomic(path, text.encode("utf-8"))
    return kept


def clear_history(root: str | Path) -> None:
    """A fresh run starts its history anew."""
    (Path(root) / HISTORY).unlink(missing_ok=True)
