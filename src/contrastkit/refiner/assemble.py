"""The second step of a fit: the method's training module on the backbone, the batches, the
validation score, and the trainer that runs them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from contrastkit.config.defaults import TEXT_VIEW_DELETE_RATE, Plan, method_options
from contrastkit.data.samplers import ClassBalancedBatchSampler, RandomBatchSampler
from contrastkit.evaluation import knn_score
from contrastkit.methods.base import Batch, BuildContext, MethodSpec
from contrastkit.refiner.prepare import FitInputs
from contrastkit.training.distributed import DistInfo
from contrastkit.training.trainer import Trainer, TrainSettings
from contrastkit.views.images import ImageViews
from contrastkit.views.text import deleted_word_copies


def build_trainer(
    spec: MethodSpec,
    config,
    plan: Plan,
    inputs: FitInputs,
    backbone,
    dist_info: DistInfo,
    checkpoint_dir: str | Path | None,
    module: nn.Module | None = None,
) -> Trainer:
    """The Trainer for this fit: module, sampler, batches, validation, optimiser settings.
    `module`: a training module to continue (a later stage of a fit), else the method's own."""
    n_train = len(inputs.train_rows)
    if config.batch_size and config.batch_size > n_train:
        warnings.warn(
            f"--batch-size {config.batch_size} is larger than the {n_train} training rows; "
            f"using batches of {n_train}",
            stacklevel=4,
        )
    if module is None:
        module = spec.build(_context(spec, config, plan, inputs, backbone, dist_info))
    module = module.to(backbone.device)
    settings = TrainSettings(
        epochs=plan.epochs,
        lr=plan.lr,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        max_grad_norm=config.max_grad_norm,
        max_bad_steps=config.max_bad_steps,
        patience=config.patience,
        quiet=config.quiet or not dist_info.is_main,
    )
    return Trainer(
        module,
        _sampler(spec, config, plan, inputs, dist_info),
        _fetch(inputs, backbone, config.quiet, _text_view_copies(inputs, config, plan)),
        settings,
        validate=_validate(inputs, backbone, plan.residual_scale),
        checkpoint_dir=checkpoint_dir,  # every rank resumes from it; rank 0 writes it
        save_checkpoints=dist_info.is_main,
        train_module=_ddp(module, backbone.device) if dist_info.enabled else None,
        param_groups=_param_groups(module, backbone.encoder, plan),
    )


def _context(spec, config, plan: Plan, inputs: FitInputs, backbone, dist_info) -> BuildContext:
    return BuildContext(
        encoder=backbone.encoder,
        dim=backbone.dim,
        num_classes=inputs.n_classes,
        options=spec.check_options(method_options(config, plan)),
        head_dim=config.head_dim if plan.projection_head else None,
        gather=dist_info.enabled,
        augment=_augment(spec, inputs),
        kind=inputs.base_kind,
        mode=inputs.mode,
    )


def _augment(spec: MethodSpec, inputs: FitInputs) -> nn.Module | None:
    if inputs.kind != "images" or inputs.mode == "adapter":  # an adapter sees embeddings
        return None
    h, w = inputs.X.shape[1:3]
    channels = 1 if inputs.X.ndim == 3 else inputs.X.shape[3]
    strength = "supervised" if spec.needs_labels else "self_supervised"
    return ImageViews(h, w, channels, strength)


def _sampler(spec, config, plan: Plan, inputs: FitInputs, dist_info: DistInfo):
    common = dict(seed=config.seed, rank=dist_info.rank, world_size=dist_info.world_size)
    if inputs.labels is not None and spec.name != "ce" and inputs.kind != "pairs":
        return ClassBalancedBatchSampler(
            inputs.y_train, plan.batch_size, plan.m_per_class, **common
        )
    # Self-supervised batches drop the last partial one: batch statistics (Barlow Twins,
    # VICReg, batch norm) need more than a row or two.
    drop_last = not spec.needs_labels
    return RandomBatchSampler(
        len(inputs.train_rows), plan.batch_size, drop_last=drop_last, **common
    )


def _text_view_copies(inputs: FitInputs, config, plan: Plan) -> list[list[str]]:
    """The extra views of the training texts in adapter mode: `views - 1` copies of them with
    words deleted (`contrastkit.config.defaults`); none elsewhere."""
    views = method_options(config, plan).get("views", 1)
    if inputs.kind != "text" or inputs.mode != "adapter" or views <= 1 or inputs.y_train is None:
        return []
    return deleted_word_copies(inputs.X_train, views - 1, TEXT_VIEW_DELETE_RATE, config.seed)


def _fetch(inputs: FitInputs, backbone, quiet: bool, copies: list[list[str]]):
    """`fetch(indices) -> Batch` over the training rows, prepared once (base embeddings for the
    adapter, tensors for images, texts for fine-tuning; both columns of pairs). With `copies`
    (other views of the training texts, embedded once and not cached on disk) a batch holds
    the rows, then the same rows of each copy, each with the row's label."""
    X_train = inputs.X_train
    if inputs.kind == "pairs":
        prepared = backbone.prepare([a for a, _ in X_train], progress=not quiet)
        prepared_b = backbone.prepare([b for _, b in X_train], progress=not quiet)
    else:
        prepared, prepared_b = backbone.prepare(X_train, progress=not quiet), None
    views = [prepared] + [backbone.prepare(c, progress=not quiet, cache=False) for c in copies]
    y = inputs.y_train  # class ids, or the scores of labelled pairs
    y_train = None if y is None else torch.as_tensor(y, device=backbone.device)

    def fetch(indices: list[int]) -> Batch:
        rows = [backbone.fetch(v, indices) for v in views]
        return Batch(
            rows[0] if len(rows) == 1 else torch.cat(rows),
            None if y_train is None else y_train[indices].repeat(len(views)),
            None if prepared_b is None else backbone.fetch(prepared_b, indices),
        )

    return fetch


def _validate(inputs: FitInputs, backbone, residual_scale: float | None):
    """kNN-1 accuracy of the validation rows against the training rows; None without them.
    An adapter is scored at the residual scale it will have after training."""
    if inputs.val_X is None:
        return None
    X_train, y_train, X_val, y_val = inputs.X_train, inputs.y_train, inputs.val_X, inputs.val_y

    def embed_both() -> tuple[np.ndarray, np.ndarray]:
        if residual_scale is None:
            return backbone.embed(X_train), backbone.embed(X_val)
        backbone.encoder.scale = residual_scale
        try:
            return backbone.embed(X_train), backbone.embed(X_val)
        finally:
            backbone.encoder.scale = 1.0

    def validate() -> float:
        Z_train, Z_val = embed_both()
        if not (np.isfinite(Z_train).all() and np.isfinite(Z_val).all()):
            return float("nan")  # the trainer stops the run: the model diverged
        return knn_score(Z_train, y_train, Z_val, y_val)

    return validate


def _param_groups(module: nn.Module, encoder: nn.Module, plan: Plan) -> list[dict]:
    """The encoder at the base learning rate, the head (and classifier) at the head rate."""
    encoder_ids = {id(p) for p in encoder.parameters()}
    enc = [p for p in module.parameters() if p.requires_grad and id(p) in encoder_ids]
    rest = [p for p in module.parameters() if p.requires_grad and id(p) not in encoder_ids]
    groups = [{"params": enc, "lr": plan.lr}]
    if rest:
        groups.append({"params": rest, "lr": plan.head_lr})
    return groups


def _ddp(module: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)
