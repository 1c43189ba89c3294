"""The refinement configuration: one pydantic model whose keys mirror the command-line flags.

`None` means "choose by principle from the data" (see `contrastkit.training.defaults`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contrastkit.errors import ConfigError

# Loss keyword options a user may set; each method accepts the subset its loss takes.
LOSS_OPTION_NAMES = (
    "temperature",
    "hardness",
    "beta",
    "num_negatives",
    "margin",
    "mining",
    "bias",
    "pos_margin",
    "neg_margin",
    "l2_reg",
    "tau_plus",
    "lambd",
    "sim_coeff",
    "std_coeff",
    "cov_coeff",
    "epsilon",
    "sinkhorn_iterations",
)
# Options of the self-supervised recipes themselves (not of their loss); each method accepts
# the ones it uses (see contrastkit.methods).
RECIPE_OPTION_NAMES = (
    "queue_size",
    "momentum",
    "num_prototypes",
    "local_crops",
    "freeze_prototypes",
    "text_augment",
    "views",
)


class RefineConfig(BaseModel):
    # allow_inf_nan=False: a NaN or infinite option (lr, temperature, hardness...) is refused here,
    # not discovered as a diverged run.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )

    model: str | None = None
    mode: Literal["adapter", "finetune"] | None = None
    method: str = "supcon"
    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=2)
    seed: int = 0

    lr: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    m_per_class: int | None = Field(None, ge=1)
    val_fraction: float | None = Field(None, ge=0, lt=1)
    patience: int = Field(3, ge=1)
    head_dim: int = Field(128, ge=2)
    adapter_hidden: int | None = Field(None, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    input_dropout: float = Field(0.3, ge=0, lt=1)
    projection_head: bool | None = None
    architecture: Literal["cnn", "resnet18"] = "cnn"
    max_seq_length: int | None = Field(None, ge=8)
    max_bad_steps: int = Field(20, ge=1)
    device: str = "auto"
    quiet: bool = False

    temperature: float | None = Field(None, gt=0)
    hardness: float | None = None
    beta: float | None = None
    num_negatives: int | None = Field(None, ge=1)
    margin: float | None = Field(None, ge=0)
    mining: Literal["batch_hard", "semi_hard", "all"] | None = None
    bias: float | None = None
    pos_margin: float | None = Field(None, ge=0)
    neg_margin: float | None = Field(None, ge=0)
    l2_reg: float | None = Field(None, ge=0)
    tau_plus: float | None = Field(None, ge=0, lt=1)
    lambd: float | None = Field(None, ge=0)
    sim_coeff: float | None = Field(None, ge=0)
    std_coeff: float | None = Field(None, ge=0)
    cov_coeff: float | None = Field(None, ge=0)
    epsilon: float | None = Field(None, gt=0)
    sinkhorn_iterations: int | None = Field(None, ge=1)

    queue_size: int | None = Field(None, ge=1)
    momentum: float | None = Field(None, ge=0, le=1)
    num_prototypes: int | None = Field(None, ge=2)
    local_crops: int | None = Field(None, ge=0)
    freeze_prototypes: int | None = Field(None, ge=0)
    text_augment: Literal["dropout", "delete", "swap", "mask"] | None = None
    views: int | None = Field(None, ge=1, le=2)

    def loss_options(self) -> dict:
        """The loss options the user set (the others keep the loss's own defaults)."""
        return {k: getattr(self, k) for k in LOSS_OPTION_NAMES if getattr(self, k) is not None}

    def method_options(self) -> dict:
        """Every option the user set that belongs to the method: its loss's keywords and the
        recipe's own (queue_size, momentum, ...); the method checks they are ones it takes."""
        recipe = {k: getattr(self, k) for k in RECIPE_OPTION_NAMES if getattr(self, k) is not None}
        return {**self.loss_options(), **recipe}


def make_config(**values) -> RefineConfig:
    """Build a config, turning pydantic's report into one sentence per problem."""
    try:
        return RefineConfig(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_config_file(path: str | Path) -> dict:
    """Read a YAML (or JSON) config file into a dict of options."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"config file {path} is not valid YAML ({what}{where}); fix it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value pairs")
    # Keys mirror the flags, so accept both `batch-size` and `batch_size`.
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "config"
        flag = "--" + name.replace("_", "-")
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown option {flag}; see `contrastkit refine --help` for the options")
        else:
            parts.append(f"invalid value {err.get('input')!r} for {flag}: {err['msg']}")
    return "; ".join(parts)
