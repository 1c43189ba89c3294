"""`Refiner`: the sklearn-style front door. fit(X, y) -> transform(X) -> save(path) / load(path)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn

from contrastkit import __version__
from contrastkit.data.labels import encode_labels
from contrastkit.data.samplers import ClassBalancedBatchSampler, RandomBatchSampler
from contrastkit.data.views import ImageViews
from contrastkit.errors import ConfigError, DataError, UserError
from contrastkit.inputs import check_input, check_labels
from contrastkit.methods.batch import Batch
from contrastkit.methods.registry import BuildContext, get_method
from contrastkit.models.backbones import BACKBONES, build_backbone
from contrastkit.training.config import RefineConfig, make_config
from contrastkit.training.defaults import Plan, plan_training
from contrastkit.training.distributed import DistInfo, init_distributed, resolve_device
from contrastkit.training.seed import seed_everything
from contrastkit.training.trainer import Trainer, TrainingDiverged, TrainSettings
from contrastkit.training.validation import knn_score, stratified_split

MODES_BY_KIND = {"text": ("adapter", "finetune"), "vectors": ("adapter",), "images": ("finetune",)}


class Refiner:
    """Refine embeddings with contrastive learning.

    >>> r = Refiner(method="supcon").fit(texts, labels)
    >>> Z = r.transform(texts)          # float32, rows L2-normalised

    `model`: a sentence-transformers folder for text (None: the shipped all-MiniLM-L6-v2);
    `mode`: "adapter" (frozen base + residual network) or "finetune" (the encoder trains);
    None picks adapter for text and vectors, finetune for images (simcse: finetune).
    `method`: a supervised loss name (supcon, hscl, triplet, contrastive_pair, logistic_pair,
    npair) or "ce", which need labels; or a self-supervised one (simclr, dcl, hcl, moco, byol,
    swav, barlow_twins, vicreg, simcse), which needs none; or "clip" for a list of (a, b) text
    pairs. `epochs` and `batch_size` None: chosen from the data size. Other keywords: loss
    options (temperature, hardness, beta, margin, ...), recipe options (queue_size, momentum,
    num_prototypes, local_crops, freeze_prototypes, text_augment, views) and training options (lr,
    m_per_class, ...), exactly the keys of `contrastkit refine --config`.
    """

    def __init__(
        self,
        model: str | None = None,
        mode: str | None = None,
        method: str = "supcon",
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        **options,
    ) -> None:
        self.config: RefineConfig = make_config(
            model=model,
            mode=mode,
            method=method,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            **options,
        )
        self.spec = get_method(self.config.method)
        self.spec.check_options(self.config.method_options())
        self.backbone_ = None

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        X,
        y=None,
        *,
        validation: tuple | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
    ) -> Refiner:
        """Train on X (and labels y for supervised methods; self-supervised methods ignore y).
        Returns self. For clip, X is a list of (a, b) text pairs; the fitted model embeds texts.

        `validation=(X_val, y_val)`: rows scored after every epoch (kNN-1 against the training
        rows) to keep the best epoch and stop early; without it, `val_fraction` of each class
        is held out when set, else training follows the full schedule. `checkpoint_dir`: write
        a checkpoint every epoch there; `resume=True` continues from the latest one.
        """
        started = time.perf_counter()
        cfg, spec = self.config, self.spec
        X, kind = check_input(X)
        mode = self._resolve_mode(kind)
        base_kind = "text" if kind == "pairs" else kind  # pairs: both columns are texts
        if len(X) < 2:
            raise DataError("training needs at least two rows")
        labels, classes = None, None
        if spec.needs_labels:
            if y is None:
                raise DataError(f"method {cfg.method} is supervised and needs labels: pass y")
            encoded = encode_labels(check_labels(y, len(X)))
            labels, classes = encoded.train, encoded.classes
            singletons = encoded.singleton_classes()
            if singletons:
                shown = ", ".join(map(str, singletons[:5]))
                warnings.warn(
                    f"{len(singletons)} classes have a single row ({shown}...): they have no positive "
                    "pair and only serve as negatives; add rows to them for better results",
                    stacklevel=2,
                )
        device = resolve_device(cfg.device)
        dist_info = init_distributed(device)
        seed_everything(cfg.seed)

        train_idx, val_idx = self._split(len(X), labels)
        plan = plan_training(
            cfg, base_kind, mode, len(train_idx), len(classes) if classes else None
        )
        if cfg.batch_size and cfg.batch_size > len(train_idx):
            warnings.warn(
                f"--batch-size {cfg.batch_size} is larger than the {len(train_idx)} training rows; "
                f"using batches of {len(train_idx)}",
                stacklevel=2,
            )
        backbone = build_backbone(base_kind, mode, X, cfg, device, progress=not cfg.quiet)
        prepared_b = None
        if kind == "pairs":
            pairs = _take(X, train_idx)
            prepared = backbone.prepare([a for a, _ in pairs], progress=not cfg.quiet)
            prepared_b = backbone.prepare([b for _, b in pairs], progress=not cfg.quiet)
        else:
            prepared = backbone.prepare(_take(X, train_idx), progress=not cfg.quiet)
        y_train = None if labels is None else torch.as_tensor(labels[train_idx], device=device)
        module = spec.build(
            BuildContext(
                encoder=backbone.encoder,
                dim=backbone.dim,
                num_classes=len(classes) if classes else None,
                options=spec.check_options({**plan.loss_defaults, **cfg.method_options()}),
                head_dim=cfg.head_dim if _use_head(cfg, mode) else None,
                gather=dist_info.enabled,
                augment=self._augment(kind, X),
                kind=base_kind,
                mode=mode,
                rows=len(train_idx),
            )
        ).to(device)

        sampler = self._sampler(
            plan, len(train_idx), None if labels is None else labels[train_idx], dist_info
        )

        def fetch(indices: list[int]) -> Batch:
            return Batch(
                backbone.fetch(prepared, indices),
                None if y_train is None else y_train[indices],
                None if prepared_b is None else backbone.fetch(prepared_b, indices),
            )

        validate = None
        if validation is not None and labels is not None:
            X_val, val_kind = check_input(validation[0])
            if val_kind != kind:
                raise DataError(f"validation rows are {val_kind} but the training rows are {kind}")
            y_val = _encode_like(validation[1], classes, len(X_val))
        elif len(val_idx) and labels is not None:
            X_val, y_val = _take(X, val_idx), labels[val_idx]
        if validate is None and labels is not None and (validation is not None or len(val_idx)):
            X_tr, y_tr = _take(X, train_idx), labels[train_idx]

            def validate() -> float:
                Z_tr, Z_val = backbone.embed(X_tr), backbone.embed(X_val)
                if not (np.isfinite(Z_tr).all() and np.isfinite(Z_val).all()):
                    return float("nan")  # the trainer stops the run: the model diverged
                return knn_score(Z_tr, y_tr, Z_val, y_val)

        trainer = Trainer(
            module,
            sampler,
            fetch,
            TrainSettings(
                epochs=plan.epochs,
                lr=plan.lr,
                weight_decay=cfg.weight_decay,
                warmup=cfg.warmup,
                max_grad_norm=cfg.max_grad_norm,
                max_bad_steps=cfg.max_bad_steps,
                patience=cfg.patience,
                quiet=cfg.quiet or not dist_info.is_main,
            ),
            validate=validate,
            checkpoint_dir=checkpoint_dir,  # every rank resumes from it; rank 0 writes it
            save_checkpoints=dist_info.is_main,
            train_module=_ddp(module, device) if dist_info.enabled else None,
            param_groups=_param_groups(module, backbone.encoder, plan),
        )
        state = trainer.fit(resume=resume)

        self.backbone_, self.kind_, self.mode_ = backbone, base_kind, mode
        self.classes_ = classes
        self.plan_: Plan = plan
        self.history_ = state.history
        self.training_state_ = state
        self.dist_ = dist_info
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _resolve_mode(self, kind: str) -> str:
        spec = self.spec
        kinds = spec.kinds or ("text", "vectors", "images")
        if kind == "pairs" and kind not in kinds:
            raise DataError(
                f"pairs of texts are for paired methods (clip); method {self.config.method} takes "
                "single texts"
            )
        if kind not in kinds:
            wanted = " or ".join("(a, b) text pairs" if k == "pairs" else k for k in kinds)
            raise DataError(
                f"method {spec.name} takes {wanted}, but was given {kind} ({spec.description})"
            )
        allowed = MODES_BY_KIND["text" if kind == "pairs" else kind]
        mode = self.config.mode or spec.default_modes.get(kind) or allowed[0]
        if mode not in allowed:
            why = {
                "vectors": "vectors have no base encoder to fine-tune; use mode adapter",
                "images": "no pretrained image model is shipped, so the CNN itself is trained; use mode finetune",
            }[kind]
            raise ConfigError(f"mode {mode} does not apply to {kind}: {why}")
        if spec.check_fit is not None:
            spec.check_fit(kind, mode, self.config.method_options())
        return mode

    def _split(self, n: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        fraction = self.config.val_fraction or 0.0
        if fraction <= 0 or labels is None:
            return np.arange(n), np.arange(0)
        return stratified_split(labels, fraction, self.config.seed)

    def _augment(self, kind: str, X) -> nn.Module | None:
        if kind != "images":
            return None
        h, w = X.shape[1:3]
        channels = 1 if X.ndim == 3 else X.shape[3]
        strength = "supervised" if self.spec.needs_labels else "self_supervised"
        return ImageViews(h, w, channels, strength)

    def _sampler(self, plan: Plan, n: int, labels: np.ndarray | None, dist_info: DistInfo):
        common = dict(seed=self.config.seed, rank=dist_info.rank, world_size=dist_info.world_size)
        if labels is not None and self.config.method != "ce":
            return ClassBalancedBatchSampler(labels, plan.batch_size, plan.m_per_class, **common)
        # Self-supervised batches drop the last partial one: batch statistics (Barlow Twins,
        # VICReg, batch norm) need more than a row or two.
        drop_last = not self.spec.needs_labels
        return RandomBatchSampler(n, plan.batch_size, drop_last=drop_last, **common)

    # -- using the refined model --------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.backbone_ is None:
            raise ConfigError(
                "this Refiner is not fitted yet: call fit(X, y) or Refiner.load(path) first"
            )

    def _check_kind(self, X) -> object:
        X, kind = check_input(X)
        if kind != self.kind_:
            raise DataError(f"this model was fitted on {self.kind_} but was given {kind}")
        dim = getattr(self.backbone_, "dim", None)
        if kind == "vectors" and X.shape[1] != dim:
            raise DataError(
                f"the vectors have {X.shape[1]} dimensions but this model was fitted on "
                f"{dim}-dimensional vectors; embed them with the same base model as the training data"
            )
        return X

    def transform(self, X) -> np.ndarray:
        """Refined embeddings: float32 (n, dim), rows L2-normalised."""
        self._check_fitted()
        return _finite(self.backbone_.embed(self._check_kind(X)))

    def base_transform(self, X) -> np.ndarray:
        """The embeddings before refinement (frozen base model; raw vectors or pixels)."""
        self._check_fitted()
        return self.backbone_.base_embed(self._check_kind(X)).astype(np.float32, copy=False)

    def fit_transform(self, X, y=None, **kwargs) -> np.ndarray:
        return self.fit(X, y, **kwargs).transform(X)

    # -- saving and loading -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the refined model to a folder (safetensors + JSON; a finetuned text model is also
        a plain sentence-transformers folder)."""
        from contrastkit.models.manifest import write_manifest

        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        backbone_meta = self.backbone_.save(folder)
        write_manifest(
            folder,
            {
                "format": "contrastkit-refiner",
                "format_version": 1,
                "contrastkit_version": __version__,
                "kind": self.kind_,
                "mode": self.mode_,
                "config": self.config.model_dump(),
                "classes": self.classes_,
                "plan": self.plan_.as_dict(),
                "backbone": backbone_meta,
            },
        )
        return folder

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Refiner:
        """Load a folder written by `save`, after checking every file against its checksum."""
        from contrastkit.models.manifest import MANIFEST, ModelFolderError, read_manifest

        folder = Path(path)
        meta = read_manifest(folder)
        try:
            config = dict(meta["config"], device=device)
            refiner = cls(**config)
            kind, mode = meta["kind"], meta["mode"]
            backbone_cls = BACKBONES[(kind, mode)]
            refiner.backbone_ = backbone_cls.load(
                folder, kind, meta["backbone"], resolve_device(device)
            )
            refiner.kind_, refiner.mode_ = kind, mode
            refiner.classes_ = meta["classes"]
            refiner.plan_ = Plan(**meta["plan"])
        except ModelFolderError:
            raise
        except UserError as exc:  # e.g. an option or a model class the manifest names
            raise ModelFolderError(
                f"model folder {folder} cannot be loaded: {' '.join(str(exc).split())}"
            ) from None
        except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
            # Every file matched its checksum, so the manifest itself disagrees with them.
            detail = " ".join(str(exc).split())[:200]
            raise ModelFolderError(
                f"model folder {folder} does not match its {MANIFEST} ({detail}); save the model "
                "again or copy the whole folder again"
            ) from None
        refiner.history_ = []
        return refiner


def _finite(Z: np.ndarray) -> np.ndarray:
    """float32 embeddings, or TrainingDiverged naming the rows a broken model gives NaN/inf for."""
    bad = np.flatnonzero(~np.isfinite(Z).all(axis=1))
    if bad.size:
        rows = ", ".join(map(str, bad[:5].tolist())) + (" ..." if bad.size > 5 else "")
        raise TrainingDiverged(
            f"training diverged: the refined model gives NaN or inf embeddings for {bad.size} "
            f"rows ({rows}); train it again with a lower --lr or a higher --temperature"
        )
    return Z.astype(np.float32, copy=False)


def _use_head(cfg: RefineConfig, mode: str) -> bool:
    """A projection head for fine-tuning (the SupCon/SimCLR recipe); none for the adapter, which
    is itself a small network on the frozen embedding: a head on top of it lets the loss be
    met in the head's space while the embedding we keep barely moves (measured on a held-out
    part of Banking77's train split: MAP@R 0.51 with a head, 0.71 without)."""
    return cfg.projection_head if cfg.projection_head is not None else mode != "adapter"


def _encode_like(y, classes: list, n: int) -> np.ndarray:
    """Validation labels as the training class ids (-1 for classes training never saw)."""
    index = {c: i for i, c in enumerate(classes)}
    values = check_labels(y, n).tolist()
    return np.asarray([index.get(v, -1) for v in values], dtype=np.int64)


def _take(X, idx: np.ndarray):
    if isinstance(X, np.ndarray):
        return X[idx]
    return [X[i] for i in idx]


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
