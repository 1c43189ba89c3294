"""Turning the trainer's state into (tensors, JSON) for checkpoints and back."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.training.seed import rng_state, set_rng_state


def model_tensors(model: nn.Module, prefix: str = "model.") -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in model.state_dict().items()}


def load_model_tensors(
    model: nn.Module, tensors: dict[str, torch.Tensor], prefix: str = "model."
) -> None:
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    model.load_state_dict(state)


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser state dict into tensors (safetensors) and plain JSON values."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, slots in sd["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, slots in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(slots)
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_to_flat() -> tuple[dict[str, torch.Tensor], dict]:
    state = rng_state()
    return {"rng.torch": state.pop("torch")}, state


def rng_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    set_rng_state(dict(meta, torch=tensors["rng.torch"]))
