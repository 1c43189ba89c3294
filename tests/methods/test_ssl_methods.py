"""The self-supervised recipes on tiny data: loss falls, gradients go where the method says,
momentum targets, MoCo's queue, SwAV's prototypes and multi-crop loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ssl_fixtures import build, falls, train_losses

from contrastkit import losses
from contrastkit.errors import ConfigError
from contrastkit.methods.clustering import swapped_prediction
from contrastkit.methods.registry import METHODS, SELF_SUPERVISED_METHODS
from contrastkit.models.momentum import cosine_momentum

TWO_VIEW = ["simclr", "dcl", "hcl", "barlow_twins", "vicreg", "byol", "swav"]
ALL_UNLABELLED = [*TWO_VIEW, "moco"]


def test_registry_lists_every_self_supervised_method():
    assert set(SELF_SUPERVISED_METHODS) == {*ALL_UNLABELLED, "simcse", "clip"}
    assert all(not METHODS[m].needs_labels for m in SELF_SUPERVISED_METHODS)
    assert METHODS["simcse"].kinds == ("text",) and METHODS["clip"].kinds == ("pairs",)
    assert METHODS["simcse"].default_modes == {"text": "finetune"}


@pytest.mark.parametrize(
    "method,accepted,refused",
    [
        ("simclr", {"temperature": 0.2, "text_augment": "swap"}, "queue_size"),
        ("dcl", {"tau_plus": 0.2}, "beta"),
        ("hcl", {"tau_plus": 0.2, "beta": 0.5}, "lambd"),
        ("moco", {"queue_size": 64, "momentum": 0.9, "temperature": 0.1}, "num_prototypes"),
        ("byol", {"momentum": 0.9}, "temperature"),
        ("swav", {"num_prototypes": 20, "local_crops": 2, "freeze_prototypes": 3}, "queue_size"),
        ("barlow_twins", {"lambd": 0.01}, "sim_coeff"),
        ("vicreg", {"sim_coeff": 10.0, "std_coeff": 10.0, "cov_coeff": 2.0}, "lambd"),
        ("simcse", {"temperature": 0.05, "text_augment": "mask"}, "momentum"),
        ("clip", {"temperature": 0.05}, "text_augment"),
    ],
)
def test_each_method_checks_its_options(method, accepted, refused):
    spec = METHODS[method]
    assert spec.check_options(accepted) == accepted
    with pytest.raises(ConfigError, match=f"'{refused}' is not an option of method {method}"):
        spec.check_options({**accepted, refused: 1})


@pytest.mark.parametrize("method", TWO_VIEW)
def test_loss_falls_on_vectors(method):
    train = train_losses(method, "vectors", 15, batch_size=64)
    assert all(math.isfinite(v) for v in train)
    assert falls(train), train


def test_moco_loss_falls_once_the_queue_holds_real_keys():
    # The queue starts with random unit vectors (easy negatives); once real keys fill it
    # (after queue_size / batch_size steps) the loss falls as the encoder learns.
    train = train_losses("moco", "vectors", 20, batch_size=32, options={"queue_size": 64})
    assert falls(train[2:]), train


@pytest.mark.parametrize("method", ALL_UNLABELLED)
def test_one_step_on_images(method):
    torch.manual_seed(0)
    options = {"local_crops": 2} if method == "swav" else {}
    module, fetch = build(method, "images", options, rows=32)
    module.train()
    loss = module(fetch(np.arange(16)))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in module.encoder.parameters()]
    assert all(g is not None for g in grads) and any(bool(g.abs().sum() > 0) for g in grads)


# -- momentum methods ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["byol", "moco"])
def test_no_gradient_reaches_the_target_and_it_moves_by_ema(method):
    torch.manual_seed(0)
    module, fetch = build(method, "vectors", {"momentum": 0.9})
    module.train()
    module(fetch(np.arange(64))).backward()
    assert all(p.grad is None and not p.requires_grad for p in module.target.parameters())
    online = list(module.encoder.parameters()) + list(module.head.parameters())
    assert any(p.grad is not None for p in online)
    with torch.no_grad():  # stand-in for an optimiser step
        for p in online:
            p.add_(0.1 * torch.randn_like(p))
    before = [p.clone() for p in module.target.parameters()]
    module.on_step_end(3, 10)
    m = cosine_momentum(3, 10, 0.9)
    for t, t0, o in zip(module.target.parameters(), before, online, strict=True):
        torch.testing.assert_close(t, m * t0 + (1 - m) * o)


def test_byol_predictor_trains_and_loss_is_symmetric():
    torch.manual_seed(0)
    module, fetch = build("byol", "vectors")
    module.eval()  # no dropout: both views equal the input, so the symmetric loss is one term
    batch = fetch(np.arange(32))
    p = module.predictor(module.online(batch.inputs))
    z = module.target(batch.inputs)
    expected = (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()
    torch.testing.assert_close(module(batch), expected)
    module.train()
    module(fetch(np.arange(32))).backward()
    assert all(p.grad is not None for p in module.predictor.parameters())


def test_moco_loss_is_cross_entropy_against_the_queue_only():
    torch.manual_seed(0)
    module, fetch = build("moco", "vectors", {"queue_size": 16, "temperature": 0.2})
    module.eval()
    batch = fetch(np.arange(8))
    q = F.normalize(module.online(batch.inputs), dim=1)
    k = F.normalize(module.target(batch.inputs), dim=1)
    queue = module.queue.keys
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / 0.2
    expected = F.cross_entropy(logits, torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(module(batch), expected, rtol=1e-5, atol=1e-6)


def test_moco_pushes_keys_after_the_step_and_the_queue_wraps():
    torch.manual_seed(0)
    module, fetch = build("moco", "vectors", {"queue_size": 20})
    module.eval()
    initial = module.queue.keys.clone()
    module(fetch(np.arange(8)))
    assert torch.equal(module.queue.keys, initial)  # nothing queued before the step ends
    keys = F.normalize(module.target(fetch(np.arange(8)).inputs), dim=1)
    module.on_step_end(1, 10)
    assert int(module.queue.pointer) == 8
    torch.testing.assert_close(module.queue.keys[:8], keys)
    for step in range(2, 4):  # 24 keys into 20 slots: wraps to slot 4
        module(fetch(np.arange(8 * step, 8 * step + 8)))
        module.on_step_end(step, 10)
    assert int(module.queue.pointer) == 4 and int(module.queue.filled) == 20


def test_momentum_reaches_one_at_the_last_step():
    torch.manual_seed(0)
    module, _ = build("byol", "vectors", {"momentum": 0.5})
    with torch.no_grad():
        for p in module.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in module.target.parameters()]
    module.on_step_end(10, 10)  # m = 1: the target stays where it is
    assert all(torch.equal(a, b) for a, b in zip(before, module.target.parameters(), strict=True))


# -- SwAV ---------------------------------------------------------------------------------------


def _sinkhorn_plain(scores: torch.Tensor, eps: float, iterations: int) -> torch.Tensor:
    """The SwAV paper's Algorithm 1, transcribed with plain exponentials."""
    q = torch.exp(scores / eps).T
    q = q / q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).T


def _multicrop_reference(scores, t, eps, iterations):
    total = 0.0
    for i in (0, 1):
        q = _sinkhorn_plain(scores[i].detach(), eps, iterations)
        terms = [
            -(q * torch.log_softmax(s / t, dim=1)).sum(1).mean()
            for v, s in enumerate(scores)
            if v != i
        ]
        total = total + sum(terms) / len(terms)
    return total / 2


def test_swapped_prediction_equals_swav_for_two_views_and_the_formula_for_more():
    torch.manual_seed(0)
    scores = [F.normalize(torch.randn(12, 6, dtype=torch.float64), dim=1) for _ in range(4)]
    opts = dict(temperature=0.1, epsilon=0.05, sinkhorn_iterations=3)
    torch.testing.assert_close(
        swapped_prediction(scores[:2], **opts), losses.swav(scores[0], scores[1], **opts)
    )
    torch.testing.assert_close(
        swapped_prediction(scores, **opts), _multicrop_reference(scores, 0.1, 0.05, 3)
    )


def test_swav_prototypes_frozen_first_then_trained_and_kept_unit_length():
    torch.manual_seed(0)
    module, fetch = build("swav", "vectors", {"freeze_prototypes": 2, "num_prototypes": 10})
    module.train()
    for step in range(1, 5):
        module.zero_grad()
        module(fetch(np.arange(32))).backward()
        frozen = step <= 2
        assert (module.prototypes.weight.grad is None) == frozen, step
        with torch.no_grad():
            module.prototypes.weight.add_(0.5)  # a step that leaves the unit sphere
        module.on_step_end(step, 4)
        torch.testing.assert_close(module.prototypes.weight.norm(dim=1), torch.ones(10))


def test_swav_default_freeze_is_five_percent_of_the_run():
    module, _ = build("swav", "vectors")
    assert module.prototypes_frozen()  # before the first step the length of the run is unknown
    module.on_step_end(4, 100)
    assert module.prototypes_frozen()
    module.on_step_end(5, 100)
    assert not module.prototypes_frozen()
