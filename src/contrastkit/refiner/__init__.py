"""`Refiner`: the sklearn-style front door, and the one orchestrator of a fit.

fit(X, y) = prepare (check rows, mode, labels, validation rows)
          -> build (plan, backbone, method, trainer)
          -> train (the trainer's loop; checkpoints, resume, early stopping)
then transform(X), save(path) / load(path).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from contrastkit import __version__
from contrastkit.config.defaults import Plan, method_options, plan_training
from contrastkit.config.refine_config import RefineConfig, make_config
from contrastkit.config.unlabelled import labelled_stage_config
from contrastkit.data.inputs import check_input
from contrastkit.errors import ConfigError, DataError, UserError
from contrastkit.methods.registry import get_method
from contrastkit.models.backbones import build_backbone
from contrastkit.models.stacked import backbone_class
from contrastkit.refiner.assemble import build_trainer
from contrastkit.refiner.prepare import FitInputs, prepare_inputs
from contrastkit.refiner.unlabelled import fit_with_unlabelled, prepare_unlabelled
from contrastkit.training.distributed import init_distributed, resolve_device
from contrastkit.training.seed import seed_everything
from contrastkit.training.trainer import TrainingDiverged


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
    pairs. `epochs` and `batch_size` None: chosen from the data size. Other keywords: every
    option of `contrastkit.config.options.OPTIONS` (loss options such as temperature,
    hardness, margin; recipe options such as queue_size, views; training options such as lr,
    val_fraction), exactly the keys of `contrastkit refine --config`.
    """

    def __init__(
        self,
        model: str | None = None,
        mode: str | None = None,
        method: str | None = None,
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
        # None: chosen from the data at fit (`config.defaults.default_method`)
        self.spec = get_method(self.config.method) if self.config.method else None
        if self.spec is not None:
            self.spec.check_options(self.config.method_options())
        resolve_device(self.config.device)  # an unusable device is refused now, not mid-run
        self.backbone_ = None
        self.unlabelled_: dict | None = None  # after a fit with unlabelled rows: what they did

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        X,
        y=None,
        *,
        X_unlabelled=None,
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
        `X_unlabelled`: rows of the same kind without labels, trained with the labelled ones in
        stages (`contrastkit.refiner.unlabelled`; options unlabelled_method, pseudo_labels,
        pseudo_label_margin); a killed run resumes in the stage it was in.
        Under torchrun every rank calls fit on the same data and trains its share of the
        batches.
        """
        started = time.perf_counter()
        cfg = self.config
        inputs = prepare_inputs(self.spec, cfg, X, y, validation)
        unlabelled = prepare_unlabelled(inputs, cfg, X_unlabelled)
        if unlabelled is not None:
            cfg = labelled_stage_config(cfg)
        device = resolve_device(cfg.device)
        dist_info = init_distributed(device)
        seed_everything(cfg.seed)
        plan = self._plan_for(inputs, cfg)
        backbone = build_backbone(
            inputs.base_kind, inputs.mode, inputs.X, cfg, device, progress=not cfg.quiet
        )
        if unlabelled is None:
            trainer = build_trainer(inputs.spec, cfg, plan, inputs, backbone, dist_info, checkpoint_dir)  # fmt: skip
            state = trainer.fit(resume=resume)
        else:
            state, backbone = fit_with_unlabelled(inputs.spec, cfg, plan, inputs, unlabelled,
                                                  backbone, dist_info, checkpoint_dir, resume)  # fmt: skip
        if plan.residual_scale is not None:  # the adapter trains at scale 1, then is bounded
            backbone.encoder.scale = plan.residual_scale
        self._keep(inputs, plan, backbone, state)
        if unlabelled is not None:  # how many unlabelled rows trained, and how
            self.rows_.update(unlabelled.rows())
            self.unlabelled_ = unlabelled.summary()
        self.dist_ = dist_info
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _keep(self, inputs: FitInputs, plan: Plan, backbone, state) -> None:
        self.backbone_, self.kind_, self.mode_ = backbone, inputs.base_kind, inputs.mode
        self.classes_ = inputs.classes
        self.plan_: Plan = plan
        self.method_ = plan.method
        self.history_ = state.history
        self.training_state_ = state
        self.rows_ = {
            "train": len(inputs.train_rows),
            "validation": 0 if inputs.val_X is None else len(inputs.val_X),
        }

    def plan(self, X, y=None, *, X_unlabelled=None, validation: tuple | None = None) -> Plan:
        """The plan a fit on this data follows (what the defaults choose from its size and
        classes), without training; the same errors as `fit` for data it cannot take."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fit warns about the data itself
            inputs = prepare_inputs(self.spec, self.config, X, y, validation)
            unlabelled = prepare_unlabelled(inputs, self.config, X_unlabelled)
        cfg = self.config if unlabelled is None else labelled_stage_config(self.config)
        return self._plan_for(inputs, cfg)

    def _plan_for(self, inputs: FitInputs, cfg: RefineConfig) -> Plan:
        n_train = len(inputs.train_rows)
        return plan_training(
            cfg, inputs.kind, inputs.mode, n_train, inputs.n_classes, inputs.spec.name
        )

    def resolved_options(self, plan: Plan | None = None) -> dict:
        """Every option's value in a run with `plan` (default: the fitted one): the user's,
        else the plan's choice, else the loss's own default."""
        plan = plan or self.plan_
        method = get_method(plan.method).resolved_options(method_options(self.config, plan))
        planned = {
            k: getattr(plan, k) for k in ("epochs", "batch_size", "m_per_class", "lr", "method")
        }
        return {
            **self.config.model_dump(),
            **planned,
            "projection_head": plan.projection_head,
            **method,
        }

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
        a plain sentence-transformers folder, except under an adapter: `models.stacked`)."""
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
            backbone_cls = backbone_class(kind, mode, meta["backbone"])
            refiner.backbone_ = backbone_cls.load(
                folder, kind, meta["backbone"], resolve_device(device)
            )
            refiner.kind_, refiner.mode_ = kind, mode
            refiner.classes_ = meta["classes"]
            refiner.plan_ = Plan.from_dict(meta["plan"])
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
