"""What a fit with unlabelled rows (`--unlabelled`, `Refiner.fit(X, y, X_unlabelled=...)`) does
with the options its user left unset, and the measurements that chose it (below; the whole
table: benchmarks/results/semi.md, the usage: docs/semi_supervised.md).

The stages, each with its own plan:
1. self-supervised (only when `unlabelled_method` names a method): the unlabelled rows and the
   training rows, labels dropped, under that method; the plan of that method for those rows,
   except that fine-tuning a text model takes one epoch (SimCSE's own recipe).
2. supervised: the fit's method on the labelled rows, exactly the plan of a fit without
   unlabelled rows.
3. finetune mode with pseudo-labels only: the fine-tuned model is frozen and an adapter over
   its embeddings trains on the labelled rows, with the plan of an adapter fit on them (the
   user's epochs, batch size, learning rate, rows a class and head size the fine-tuning only:
   `adapter_stage_config`).
4. pseudo-labelled (`pseudo_labels`; default on for text and vectors, off for images, which
   nothing measured): every unlabelled row whose nearest labelled class beats the runner-up by
   `pseudo_label_margin` in cosine takes that class and joins the labelled rows; the adapter
   (of adapter mode, or of stage 3) trains on both, continuing from the stage before, with the
   plan of an adapter fit on those rows; `pseudo_label_rounds` (default 2 in finetune mode, 1
   in adapter mode) repeats it, each later round labelling anew with the model of the round
   before and training a fresh adapter.

Evidence (Banking77, all-MiniLM-L6-v2, labelled rows train_10.csv; unlabelled rows the rest of
train.csv minus every valid.csv and test.csv text, ~7830 rows; scored on valid.csv, kNN-1 /
linear probe % against the labelled rows; test.csv chose nothing):
- stages, not a joint loss; no self-supervised stage by default. Adapter, seed 0 (a
  prototype of the same stages): labelled only 85.84 / 85.39; a self-supervised stage first,
  then supcon: SimCSE-style dropout views 85.71 / 85.13, nearest-neighbour positives
  85.78 / 85.19; joint (supcon + 1 x the self-supervised loss every step): 84.16 / 84.48 and
  85.52 / 85.71. A self-supervised stage did not help the adapter; joint was worse on kNN-1.
  Finetune mode: no self-supervised stage was measured (see benchmarks/results/semi.md).
- pseudo-labels on: adapter, seed 0, this library: labelled only 85.84 / 85.32, with
  pseudo-labels (margin 0.05, 6895 of 7830 rows labelled) 87.47 / 87.79 (+1.6 / +2.5).
  Prototype margins 0 / 0.05 / 0.1 (pseudo-label precision 84.5 / 90.3 / 94.0 %, rows kept
  7842 / 6888 / 6003): 87.47 / 87.01, 87.14 / 87.14, 87.21 / 87.34; a fresh adapter on the
  pseudo-labelled rows instead of continuing stage 2: 86.82 / 87.08. The margin matters
  little; 0.05 keeps most rows at 90 % precision. Seeds 0-2, this library: 10-shot
  85.97 / 85.41 -> 87.45 / 87.34; 5-shot (8217 unlabelled rows) 78.85 / 78.01 -> 81.93 / 81.77
  (+1.5 / +1.9 and +3.1 / +3.8, each far beyond the seeds' spread of 0.1 to 0.4).
- stage 3's length: once the never-worse defaults capped the adapter's epochs at 8 x (rows a
  class), "as many steps as stage 2 took" left stage 3 a few epochs over its thousands of rows
  (seeds 0-2, valid: 10-shot 86.69 / 87.14, 5-shot 80.28 / 81.56). With the plan of a fit on
  stage 3's own rows (200 epochs of ~7,400): 10-shot 87.47, 87.60, 87.66 / 88.05, 88.38,
  88.05 (seeds 0-2), 5-shot 82.79, 82.60 / 82.40, 82.14 (seeds 0-1), at ~3 min a fit on one
  thread instead of ~1.
- finetune mode: the pseudo-labels train an adapter over the fine-tuned model, not the model.
  Tried first (10-shot, seed 0, valid kNN-1 / linear %, labelled-only finetune 86.56 / 87.08):
  the transformer itself trained on the fine-tuned model's pseudo-labels for stage 2's steps,
  84.81 / 86.95 (5-shot: 79.22 / 81.10 -> 78.83 / 81.30); on an adapter's pseudo-labels (7,293
  rows, 89.6 % right; 7 epochs) 86.04 / 87.40, below that adapter itself (87.47 / 88.05); with
  a SimCSE stage first (CPFT's recipe) 85.19 / 86.88. A transformer fine-tuned on a few rows a
  class learns the wrong pseudo-labels by heart; an adapter over its frozen embeddings smooths
  over them as it does over the frozen base's. Prototype of stages 2-4 (the adapter over the
  fine-tuned model's saved embeddings, `Refiner(mode="adapter")` with the unlabelled rows):
  10-shot seeds 0 / 1: 88.64 / 89.09 and 88.51 / 89.03 against labelled-only finetune 86.56 /
  87.08 and 86.36 / 87.79 and the adapter with pseudo-labels over the frozen base 87.47 /
  88.05 and 87.60 / 88.38; 5-shot seed 0: 82.73 / 82.79 against 79.22 / 81.10 and 82.79 /
  82.40 (test.csv, chose nothing: 84.68 / 84.64). The library's own runs:
  benchmarks/results/semi.md.
- `pseudo_label_rounds` 2 in finetune mode, 1 in adapter mode: a second round labels the
  unlabelled rows anew with the first round's model (~7,570 rows of 7,830 at 88.8 % right,
  against ~7,080 at the first) and trains a fresh adapter on them (classic self-training: the
  student does not inherit the teacher's fit to the labels it was given). Over the fine-tuned
  model, 10-shot valid: prototype seeds 0 / 1 88.64 / 89.09 -> 89.29 / 89.42 and 88.51 / 89.03
  -> 89.48 / 89.74 (a third round, seed 0: 89.35 / 89.22); the library, seeds 0 / 1: 88.51 /
  89.16 -> 89.35 / 89.16 and 88.77 / 88.96 -> 89.48 / 90.00, seed 2 88.70 / 88.70 -> 88.77 /
  89.03; 5-shot seeds 0 / 1 / 2: 82.53 / 82.99 -> 82.40 / 82.92, 82.73 / 82.40 ->
  82.21 / 82.60, 83.05 / 83.64 -> 83.51 / 83.57 (a wash). Over the frozen
  base (adapter mode), prototype seed 0: 87.47 / 88.05 -> 87.34 / 88.44, no clear gain, so
  one round. A round costs an adapter fit (~3 min on one thread at ~7,800 rows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from contrastkit.config.defaults import Plan, plan_training
from contrastkit.config.options import METHOD_OPTIONS

# The choices for options left unset; the evidence is in the module docstring.
DEFAULT_UNLABELLED_METHOD = "none"
# Pseudo-labels by (kind, mode): on where they helped on valid.csv (text and vectors through an
# adapter; text fine-tuned, then an adapter over it), off where nothing was measured (images, a
# CNN trained in finetune mode): the rule is "on only where measured to help".
DEFAULT_PSEUDO_LABELS = {("text", "adapter"): True, ("vectors", "adapter"): True,
                         ("text", "finetune"): True, ("images", "finetune"): False}  # fmt: skip
DEFAULT_PSEUDO_LABEL_MARGIN = 0.05
SELF_SUPERVISED_TEXT_FINETUNE_EPOCHS = 1
# Rounds of pseudo-labels by mode: a second round where it helped on valid.csv (an adapter over
# a fine-tuned model), one where it did not (an adapter over the frozen base).
DEFAULT_PSEUDO_LABEL_ROUNDS = {"adapter": 1, "finetune": 2}
UNLABELLED_OPTIONS = (
    "unlabelled_method",
    "pseudo_labels",
    "pseudo_label_margin",
    "pseudo_label_rounds",
)


@dataclass(frozen=True)
class UnlabelledPlan:
    """The stages around the supervised one: `method` None means no self-supervised stage."""

    method: str | None
    pseudo_labels: bool
    pseudo_label_margin: float
    pseudo_label_rounds: int

    def resolved(self) -> dict:
        """The options as the run uses them (for config.yaml and `--resume`'s check)."""
        values = asdict(self)
        return {
            "unlabelled_method": values["method"] or "none",
            "pseudo_labels": values["pseudo_labels"],
            "pseudo_label_margin": values["pseudo_label_margin"],
            "pseudo_label_rounds": values["pseudo_label_rounds"],
        }


def plan_unlabelled(config, kind: str, mode: str) -> UnlabelledPlan:
    """The user's choices over the defaults of rows of `kind` in `mode` (adapter or finetune)."""
    method = config.unlabelled_method or DEFAULT_UNLABELLED_METHOD
    default = DEFAULT_PSEUDO_LABELS.get((kind, mode), False)
    pseudo = default if config.pseudo_labels is None else config.pseudo_labels
    margin = config.pseudo_label_margin
    return UnlabelledPlan(
        method=None if method == "none" else method,
        pseudo_labels=bool(pseudo),
        pseudo_label_margin=DEFAULT_PSEUDO_LABEL_MARGIN if margin is None else margin,
        pseudo_label_rounds=config.pseudo_label_rounds or DEFAULT_PSEUDO_LABEL_ROUNDS[mode],
    )


def self_supervised_config(config):
    """The config the self-supervised stage trains with: the user's training and model options,
    none of the supervised method's loss options (they belong to that method); its own method."""
    cleared = {name: None for name in METHOD_OPTIONS}
    return config.model_copy(update={**cleared, "method": config.unlabelled_method, "epochs": None})


def self_supervised_plan(config, kind: str, mode: str, n_rows: int) -> Plan:
    """Stage 1's plan for n_rows rows (unlabelled and training rows together)."""
    ssl_config = self_supervised_config(config)
    plan = plan_training(ssl_config, kind, mode, n_rows, None, ssl_config.method)
    if kind == "text" and mode == "finetune":
        plan = Plan(**{**plan.as_dict(), "epochs": SELF_SUPERVISED_TEXT_FINETUNE_EPOCHS})
    return plan


def labelled_stage_config(config):
    """The config of the labelled stages of a fit with unlabelled rows: one view of each text
    unless the user set `views` (the recipe these stages were measured with; the text views of
    `contrastkit.config.defaults` were measured on fits of labelled rows alone)."""
    return config if config.views is not None else config.model_copy(update={"views": 1})


def adapter_stage_config(config):
    """The config of the adapter over a fine-tuned model (finetune mode with pseudo-labels): the
    user's options, except those that size the fine-tuning (epochs, batch size, learning rate,
    rows a class, projection head), which the adapter's own plan chooses."""
    cleared = ("epochs", "batch_size", "lr", "m_per_class", "projection_head")
    return config.model_copy(update={**{name: None for name in cleared}, "mode": "adapter"})
