"""The nn.Module wrappers call their function with their options; the LOSSES registry."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from ss_helpers import draw
from ss_references import clip_ref

import contrastkit.losses as losses
from contrastkit.losses import (
    LOSSES,
    BarlowTwinsLoss,
    BYOLLoss,
    CLIPLoss,
    ContrastivePairLoss,
    CoSENTLoss,
    DCLLoss,
    HardSupConLoss,
    HCLLoss,
    InfoNCELoss,
    LogisticPairLoss,
    LossModule,
    NPairLoss,
    NTXentLoss,
    SupConLoss,
    SwAVLoss,
    TripletLoss,
    VICRegLoss,
)

LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])

# wrapper, function, inputs, an option with a non-default value
CASES = [
    (SupConLoss, "supcon", "labelled", {"temperature": 0.3, "hardness": 0.5}),
    (HardSupConLoss, "hscl", "labelled", {"temperature": 0.3, "beta": 2.0}),
    (LogisticPairLoss, "logistic_pair", "labelled", {"temperature": 0.2, "bias": 0.1}),
    (ContrastivePairLoss, "contrastive_pair", "labelled", {"neg_margin": 0.7}),
    (TripletLoss, "triplet", "labelled", {"margin": 0.5, "mining": "all"}),
    (NPairLoss, "npair", "paired", {"l2_reg": 0.01}),
    (CoSENTLoss, "cosent", "scored", {"temperature": 0.1}),
    (NTXentLoss, "nt_xent", "paired", {"temperature": 0.2}),
    (InfoNCELoss, "info_nce", "paired", {"temperature": 0.2}),
    (DCLLoss, "dcl", "paired", {"temperature": 0.2, "tau_plus": 0.2}),
    (HCLLoss, "hcl", "paired", {"beta": 0.5, "tau_plus": 0.05}),
    (CLIPLoss, "clip", "paired", {"temperature": 0.2}),
    (BYOLLoss, "byol", "paired", {}),
    (BarlowTwinsLoss, "barlow_twins", "paired", {"lambd": 0.01}),
    (VICRegLoss, "vicreg", "paired", {"std_coeff": 5.0}),
    (SwAVLoss, "swav", "paired", {"temperature": 0.2, "sinkhorn_iterations": 5}),
]


def inputs_for(kind: str) -> tuple[torch.Tensor, ...]:
    if kind == "labelled":
        return draw(8, 5, seed=1), LABELS
    if kind == "scored":
        return draw(8, 5, seed=1), draw(8, 5, seed=2), LABELS.double()
    return draw(8, 5, seed=1), draw(8, 5, seed=2)


@pytest.mark.parametrize("wrapper,name,kind,options", CASES, ids=[c[1] for c in CASES])
def test_wrapper_calls_its_function_with_its_options(wrapper, name, kind, options):
    function = LOSSES[name]
    inputs = inputs_for(kind)
    assert wrapper.function is function
    assert torch.equal(wrapper()(*inputs), function(*inputs))
    module = wrapper(**options)
    assert isinstance(module, LossModule) and isinstance(module, torch.nn.Module)
    assert torch.equal(module(*inputs), function(*inputs, **options))
    for option, value in options.items():
        assert f"{option}={value!r}" in repr(module)


@pytest.mark.parametrize("wrapper,name,kind,options", CASES, ids=[c[1] for c in CASES])
def test_unknown_option_is_named(wrapper, name, kind, options):
    with pytest.raises(TypeError, match="unknown option 'temprature'"):
        wrapper(temprature=0.1)


def test_option_values_are_checked_by_the_function():
    module = NTXentLoss(temperature=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        module(draw(4, 3, seed=3), draw(4, 3, seed=4))


def test_wrapper_passes_gradients():
    z1 = draw(6, 4, seed=5).requires_grad_(True)
    HCLLoss()(z1, draw(6, 4, seed=6)).backward()
    assert z1.grad is not None and torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


def test_clip_learnable_temperature():
    a, b = draw(6, 4, seed=7), draw(6, 4, seed=8)
    module = CLIPLoss(temperature=0.1, learnable_temperature=True)
    names = [name for name, _ in module.named_parameters()]
    assert names == ["log_temperature"]
    value = module(a, b)
    assert torch.isclose(value, clip_ref(a, b, 0.1))
    value.backward()
    assert module.log_temperature.grad is not None and module.log_temperature.grad != 0
    assert "learnable_temperature=True" in repr(module)
    # clamped below at min_temperature, like CLIP's cap on the logit scale
    with torch.no_grad():
        module.log_temperature.fill_(math.log(1e-4))
    assert torch.isclose(module.temperature, torch.tensor(0.01))
    assert torch.isclose(module(a, b), clip_ref(a, b, 0.01))


def test_clip_fixed_temperature_has_no_parameters():
    module = CLIPLoss(temperature=0.2)
    assert list(module.parameters()) == []
    assert module.temperature == 0.2


def test_registry_lists_every_loss_of_the_contract():
    expected = {
        "supcon", "hscl", "logistic_pair", "contrastive_pair", "triplet", "npair",
        "nt_xent", "info_nce", "dcl", "hcl", "clip", "byol", "barlow_twins", "vicreg", "swav",
        "cosent",
    }  # fmt: skip
    assert set(LOSSES) == expected
    for name, function in LOSSES.items():
        assert getattr(losses, name) is function
        assert function.__name__ == name


def test_every_wrapper_is_exported_and_covers_a_registered_loss():
    wrappers = {
        obj
        for obj in vars(losses).values()
        if inspect.isclass(obj) and issubclass(obj, LossModule) and obj is not LossModule
    }
    assert {c[0] for c in CASES} == wrappers
    assert {w.function for w in wrappers} == set(LOSSES.values())


def test_call_time_options_override_stored_ones():
    query, key, queue = draw(5, 4, seed=9), draw(5, 4, seed=10), draw(7, 4, seed=11)
    module = InfoNCELoss(in_batch_negatives=False, temperature=0.2)
    expected = losses.info_nce(
        query, key, negatives=queue, in_batch_negatives=False, temperature=0.2
    )
    assert torch.equal(module(query, key, negatives=queue), expected)
    assert module.options == {"in_batch_negatives": False, "temperature": 0.2}
    clip_module = CLIPLoss(temperature=0.1, learnable_temperature=True)
    assert torch.isclose(clip_module(query, key, temperature=5.0), clip_ref(query, key, 0.1))
