"""Every option of a refinement, declared once: name, type, bounds, default, help, and which
methods take it.

The command-line flags of `contrastkit refine`, the keys of its `--config` YAML file,
`Refiner(**options)` and the keyword arguments each method hands its loss are all derived
from `OPTIONS`. To add a loss option: add its keyword to the loss, one `Option` here naming
the methods that use it, and a test.

`default=None` means "unset": the plan (`contrastkit.config.defaults`) chooses from the data
and the method, or the loss keeps its own default (documented in docs/losses.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Group = Literal["run", "training", "model", "loss", "recipe"]

SUPERVISED_CONTRASTIVE = ("supcon", "hscl", "triplet", "contrastive_pair", "logistic_pair", "npair")
# Self-supervised methods whose positives are unlabelled views of a row (not clip's pairs).
UNLABELLED_VIEWS = (
    "simclr",
    "dcl",
    "hcl",
    "barlow_twins",
    "vicreg",
    "simcse",
    "moco",
    "byol",
    "swav",
)


@dataclass(frozen=True)
class Option:
    """One option. `methods` empty: every method takes it; else only those named."""

    name: str
    type: type
    help: str
    default: Any = None
    group: Group = "training"
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    methods: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def applies_to(self, method: str) -> bool:
        return not self.methods or method in self.methods


def _loss(name: str, type_: type, help_: str, methods: tuple[str, ...], **bounds: Any) -> Option:
    return Option(name, type_, help_, group="loss", methods=methods, **bounds)


def _recipe(name: str, type_: type, help_: str, methods: tuple[str, ...], **bounds: Any) -> Option:
    return Option(name, type_, help_, group="recipe", methods=methods, **bounds)


OPTIONS: tuple[Option, ...] = (
    # -- the run ---------------------------------------------------------------------------
    Option("model", str, "Base text model: a sentence-transformers folder (default: all-MiniLM-L6-v2).", group="model"),
    Option("mode", str, "adapter (frozen base + residual net) or finetune (train the encoder).", group="model", choices=("adapter", "finetune")),
    Option("method", str, "With labels: supcon, hscl, triplet, contrastive_pair, logistic_pair, npair or ce. Without: simclr, dcl, hcl, moco, byol, swav, barlow_twins, vicreg, simcse (text). Pairs: cosent (labelled or scored), clip (unlabelled). Unset: supcon for labelled rows, cosent for labelled pairs, clip for pairs without labels.", group="run"),
    Option("seed", int, "One seed for Python, NumPy and torch.", default=0, group="run", ge=0, le=2**32 - 1),
    Option("device", str, "auto, cpu, cuda or cuda:N.", default="auto", group="run"),
    Option("quiet", bool, "No progress bars.", default=False, group="run"),
    # -- training --------------------------------------------------------------------------
    Option("epochs", int, "Epochs (default: from the data size).", ge=1, le=100_000),
    Option("batch_size", int, "Rows per batch (default: from the mode).", ge=2, le=2**20),
    Option("lr", float, "Learning rate (AdamW) of the encoder and the head alike; unset, the plan gives each its own (finetuning text: 3e-5 and 1e-3).", gt=0),
    Option("weight_decay", float, "AdamW weight decay.", default=0.01, ge=0),
    Option("warmup", float, "Fraction of steps for the linear warm-up.", default=0.1, ge=0, lt=1),
    Option("max_grad_norm", float, "Gradient norm clip.", default=1.0, gt=0),
    Option("max_bad_steps", int, "Non-finite steps in a row before the run is stopped as diverged.", default=20, ge=1, le=10**6),
    Option("m_per_class", int, "Rows per class in each batch (default: from the data).", ge=1, le=2**20),
    Option("val_fraction", float, "Fraction of the training rows held out to pick the best epoch and stop early (default: none).", ge=0, lt=1),
    Option("patience", int, "Epochs without validation gain before stopping.", default=3, ge=1, le=10**6),
    # -- the model -------------------------------------------------------------------------
    Option("head_dim", int, "Output size of the projection head.", default=128, group="model", ge=2, le=2**16),
    Option("projection_head", bool, "Force the projection head on or off (default: on when fine-tuning, off for the adapter).", group="model"),
    Option("adapter_hidden", int, "Hidden width of the adapter (default: 4x the embedding).", group="model", ge=1, le=2**16),
    Option("dropout", float, "Dropout inside the adapter.", default=0.1, group="model", ge=0, lt=1),
    Option("input_dropout", float, "Dropout on the adapter's input features (its views).", default=0.3, group="model", ge=0, lt=1),
    Option("residual_scale", float, "Adapter: how far the refined embedding moves from the base one, normalise(x + s * MLP(x)), s from 0 (the base embedding) to 1 (the trained adapter as it is), applied after training (default: from the data, see config/defaults.py).", group="model", ge=0, le=1),
    Option("architecture", str, "Image encoder: cnn or resnet18.", default="cnn", group="model", choices=("cnn", "resnet18")),
    Option("max_seq_length", int, "Token limit per text (at most what the model can read).", group="model", ge=8, le=2**16),
    # -- loss options (passed to the loss of the methods named) -----------------------------
    _loss("temperature", float, "Loss temperature (default: the method's).", ("supcon", "hscl", "logistic_pair", "simclr", "dcl", "hcl", "simcse", "moco", "swav", "clip", "cosent"), gt=0),
    _loss("hardness", float, "supcon: tilt towards hard negatives (unset: 1 for the adapter when classes average >= 100 rows, else 0).", ("supcon",)),
    _loss("beta", float, "hscl/hcl: hard-negative concentration.", ("hscl", "hcl")),
    _loss("num_negatives", int, "hscl: Q (default n - 2).", ("hscl",), ge=1, le=2**31),
    _loss("margin", float, "triplet margin.", ("triplet",), ge=0),
    _loss("mining", str, "triplet mining: batch_hard, semi_hard or all.", ("triplet",), choices=("batch_hard", "semi_hard", "all")),
    _loss("bias", float, "logistic_pair bias.", ("logistic_pair",)),
    _loss("pos_margin", float, "contrastive_pair positive margin.", ("contrastive_pair",), ge=0),
    _loss("neg_margin", float, "contrastive_pair negative margin.", ("contrastive_pair",), ge=0),
    _loss("l2_reg", float, "npair L2 regularisation.", ("npair",), ge=0),
    _loss("tau_plus", float, "dcl/hcl: class prior tau+ in [0, 1).", ("dcl", "hcl"), ge=0, lt=1),
    _loss("lambd", float, "barlow_twins: weight of the off-diagonal term.", ("barlow_twins",), ge=0),
    _loss("sim_coeff", float, "vicreg: invariance weight.", ("vicreg",), ge=0),
    _loss("std_coeff", float, "vicreg: variance weight.", ("vicreg",), ge=0),
    _loss("cov_coeff", float, "vicreg: covariance weight.", ("vicreg",), ge=0),
    _loss("epsilon", float, "swav: Sinkhorn entropy eps.", ("swav",), gt=0),
    _loss("sinkhorn_iterations", int, "swav: Sinkhorn iterations.", ("swav",), ge=1, le=1000),
    # -- recipe options (used by the method itself) -----------------------------------------
    _recipe("queue_size", int, "moco: keys in the memory queue (default 4096, or half the rows when fewer).", ("moco",), ge=1, le=2**24),
    _recipe("momentum", float, "moco/byol: base momentum of the EMA target, rising to 1 on a cosine (default 0.99).", ("moco", "byol"), ge=0, le=1),
    _recipe("num_prototypes", int, "swav: number of prototypes (default 128).", ("swav",), ge=2, le=2**16),
    _recipe("local_crops", int, "swav on images: small multi-crop views besides the two global ones (default 4; 0: none).", ("swav",), ge=0, le=16),
    _recipe("freeze_prototypes", int, "swav: steps before the prototypes train (default 5 % of the steps, at most 313).", ("swav",), ge=0, le=10**9),
    _recipe("text_augment", str, "Self-supervised text views in --mode finetune: dropout (SimCSE, default), delete, swap or mask.", UNLABELLED_VIEWS, choices=("dropout", "delete", "swap", "mask")),
    _recipe("views", int, "Supervised contrastive methods: views of each row in a batch. Images: augmented views, 1 or 2 (default 1; SupCon's paper used 2). Texts in adapter mode: the text and views - 1 copies with words deleted, embedded once (default 5 while classes average under 100 rows, else 1; with more than 1, at most 40 epochs unless --epochs is set).", SUPERVISED_CONTRASTIVE, ge=1, le=8),
    # -- unlabelled rows (`contrastkit refine --unlabelled`, `Refiner.fit(X, y, X_unlabelled=...)`) --
    Option("unlabelled_method", str, "With --unlabelled: a self-supervised stage on the unlabelled and training rows before the supervised one (CPFT-style): simcse (text, finetune), simclr, dcl, hcl, moco, byol, swav, barlow_twins, vicreg, or none (default: none; see contrastkit/config/unlabelled.py).", choices=("none", *UNLABELLED_VIEWS)),
    Option("pseudo_labels", bool, "With --unlabelled: unlabelled rows confidently labelled by kNN after the supervised stage join a last supervised stage; in finetune mode they train an adapter over the fine-tuned model (default: on for text and vectors, off for images; see contrastkit/config/unlabelled.py)."),
    Option("pseudo_label_margin", float, "With --unlabelled: the cosine margin by which an unlabelled row's nearest labelled class must beat the runner-up to take its label (default: 0.05).", ge=0, le=2),
    Option("pseudo_label_rounds", int, "With --unlabelled and pseudo-labels: rounds of labelling the unlabelled rows; each round after the first labels them anew with the model of the round before and trains a fresh adapter on them (default: 2 in finetune mode, 1 in adapter mode; see contrastkit/config/unlabelled.py).", ge=1, le=10),
)  # fmt: skip

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
LOSS_OPTIONS = tuple(o.name for o in OPTIONS if o.group == "loss")
METHOD_OPTIONS = tuple(o.name for o in OPTIONS if o.group in ("loss", "recipe"))


def options_of(method: str) -> tuple[str, ...]:
    """The loss and recipe options `method` takes."""
    return tuple(n for n in METHOD_OPTIONS if BY_NAME[n].applies_to(method))
