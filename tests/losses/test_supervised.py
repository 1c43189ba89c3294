"""supcon and hscl against plain transcriptions (references.py), pytorch-metric-learning's
SupConLoss and the H-SCL authors' code; edge cases, bad input and numerical safety."""

from __future__ import annotations

import warnings

import pytest
import references as ref
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.reducers import DoNothingReducer

from contrastkit.losses import NoValidAnchorsWarning, hscl, supcon
from contrastkit.losses.supervised import dense_hscl_terms, dense_supcon_terms

LABEL_PATTERNS = {
    "mixed_with_singletons": [0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4],
    "pairs": [0, 0, 1, 1, 2, 2, 3, 3],
    "two_classes": [1, 0, 1, 0, 0, 1, 1],
    "one_class": [5, 5, 5, 5, 5],
    "mostly_singletons": [0, 1, 2, 3, 3, 4, 5, 6, 7],
    "two_rows_same": [3, 3],
    "sixteen_random": [0, 1, 2, 3, 1, 2, 0, 0, 3, 2, 1, 1, 0, 2, 3, 3],
}


def _batch(pattern: str, generator, dim: int = 6, dtype=torch.float64):
    labels = torch.tensor(LABEL_PATTERNS[pattern])
    x = torch.randn(len(labels), dim, generator=generator, dtype=torch.float64) * 2.0
    return x.to(dtype), labels


def _assert_matches_reference(value_and_grad, loss_fn, ref_fn, x, rtol=1e-6, atol=1e-9):
    """Value and gradient equal the reference's; where the reference has no anchor, the loss
    is an exact 0 with a zero gradient and a warning."""
    if ref_fn(x.double()) is None:
        with pytest.warns(NoValidAnchorsWarning):
            value, grad = value_and_grad(loss_fn, x)
        assert value.item() == 0.0 and grad.eq(0).all()
        return
    value, grad = value_and_grad(loss_fn, x)
    ref_value, ref_grad = value_and_grad(ref_fn, x.double())
    torch.testing.assert_close(value.double(), ref_value, rtol=rtol, atol=atol)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- supcon: reference, oracle


@pytest.mark.parametrize("pattern", [p for p in LABEL_PATTERNS if p != "two_rows_same"])
@pytest.mark.parametrize("hardness", [0.0, 0.7, 2.0, -0.5])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_supcon_value_and_grad_match_reference(
    pattern, hardness, temperature, generator, value_and_grad
):
    x, labels = _batch(pattern, generator)
    _assert_matches_reference(
        value_and_grad,
        lambda v: supcon(v, labels, temperature=temperature, hardness=hardness),
        lambda v: ref.supcon_ref(v, labels, temperature, hardness),
        x,
    )


@pytest.mark.parametrize("hardness", [0.0, 1.0])
def test_supcon_float32_within_1e4_of_float64_reference(hardness, generator, value_and_grad):
    x, labels = _batch("sixteen_random", generator, dtype=torch.float32)
    _assert_matches_reference(
        value_and_grad,
        lambda v: supcon(v, labels, temperature=0.1, hardness=hardness),
        lambda v: ref.supcon_ref(v, labels, 0.1, hardness),
        x,
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("pattern", ["mixed_with_singletons", "sixteen_random", "two_classes"])
@pytest.mark.parametrize("temperature", [0.07, 0.3])
def test_supcon_matches_pytorch_metric_learning(pattern, temperature, generator, value_and_grad):
    """PML's SupConLoss gives anchors without positives a loss of 0 and its default reducer
    (AvgNonZeroReducer) silently drops them, returning 0 when there are none; so we take its
    per-anchor losses and average them over the anchors that have a positive, which is where
    both are defined (and equal to LOSSES.md's supcon with hardness 0)."""
    x, labels = _batch(pattern, generator)
    has_positive = torch.tensor(
        [sum(int(v == w) for w in labels.tolist()) > 1 for v in labels.tolist()]
    )
    oracle = SupConLoss(temperature=temperature, reducer=DoNothingReducer())

    def pml_loss(v):
        per_anchor = oracle(v, labels)["loss"]["losses"]
        return per_anchor[has_positive].mean()

    value, grad = value_and_grad(lambda v: supcon(v, labels, temperature=temperature), x)
    pml_value, pml_grad = value_and_grad(pml_loss, x)
    torch.testing.assert_close(value, pml_value, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grad, pml_grad, rtol=1e-6, atol=1e-9)


def test_supcon_kernel_returns_each_anchors_loss_and_validity(generator):
    """dense_supcon_terms is the contract the streaming kernel also implements: per-anchor losses
    for any subset of anchors, zero and invalid where an anchor has no positive."""
    x, labels = _batch("mixed_with_singletons", generator)
    z = F.normalize(x, dim=1)
    anchors = torch.tensor([0, 5, 7, 10])  # rows 5 and 10 are singletons
    losses, valid = dense_supcon_terms(z, labels, anchors, 0.2, 0.5)
    assert valid.tolist() == [True, False, True, False]
    assert losses[~valid].eq(0).all()
    for k in (0, 2):
        i = int(anchors[k])
        # l_i alone: the reference's mean over a one-anchor batch in which i keeps every row.
        per_anchor = _single_anchor_supcon(x, labels, i, 0.2, 0.5)
        torch.testing.assert_close(losses[k], per_anchor, rtol=1e-6, atol=1e-9)


def _single_anchor_supcon(x, labels, i, t, h):
    z, y = ref.unit_rows(x), labels.tolist()
    pos = [j for j in range(len(y)) if j != i and y[j] == y[i]]
    neg = [j for j in range(len(y)) if y[j] != y[i]]
    s = z @ z.T
    d = sum(torch.exp(s[i, p] / t) for p in pos)
    w = [torch.exp(h * s[i, m] / t) for m in neg]
    d = d + len(neg) * sum(w[k] * torch.exp(s[i, m] / t) for k, m in enumerate(neg)) / sum(w)
    return -sum(s[i, p] / t - torch.log(d) for p in pos) / len(pos)


# ---------------------------------------------------------------- hscl: reference, official


@pytest.mark.parametrize("pattern", [p for p in LABEL_PATTERNS if p != "two_rows_same"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0, -1.0])
@pytest.mark.parametrize("temperature", [0.2, 0.5])
def test_hscl_value_and_grad_match_reference(pattern, beta, temperature, generator, value_and_grad):
    x, labels = _batch(pattern, generator)
    _assert_matches_reference(
        value_and_grad,
        lambda v: hscl(v, labels, temperature=temperature, beta=beta),
        lambda v: ref.hscl_ref(v, labels, temperature, beta),
        x,
    )


@pytest.mark.parametrize("num_negatives", [1, 7, 1000])
def test_hscl_num_negatives_replaces_n_minus_2(num_negatives, generator, value_and_grad):
    x, labels = _batch("sixteen_random", generator)
    _assert_matches_reference(
        value_and_grad,
        lambda v: hscl(v, labels, temperature=0.3, beta=1.5, num_negatives=num_negatives),
        lambda v: ref.hscl_ref(v, labels, 0.3, 1.5, num_negatives),
        x,
    )


def test_hscl_float32_within_1e4_of_float64_reference(generator, value_and_grad):
    x, labels = _batch("sixteen_random", generator, dtype=torch.float32)
    _assert_matches_reference(
        value_and_grad,
        lambda v: hscl(v, labels, temperature=0.5, beta=1.0),
        lambda v: ref.hscl_ref(v, labels, 0.5, 1.0),
        x,
        rtol=1e-4,
        atol=1e-5,
    )


def _two_views(generator, n_images=6, dim=5):
    image_labels = torch.tensor([0, 1, 2, 0, 1, 2, 3, 0][:n_images])
    views = torch.randn(2 * n_images, dim, generator=generator, dtype=torch.float64)
    return views, image_labels


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_hscl_matches_official_code_value_and_grad(beta, generator, value_and_grad):
    """Official code: temperature fixed at 0.5, Q = 2B - 2, weights with gradient for beta >= 1."""
    views, image_labels = _two_views(generator)
    b = len(image_labels)
    labels = image_labels.repeat(2)
    value, grad = value_and_grad(lambda v: hscl(v, labels, temperature=0.5, beta=beta), views)
    official_value, official_grad = value_and_grad(
        lambda v: ref.official_hscl_hard(
            F.normalize(v[:b], dim=1), F.normalize(v[b:], dim=1), image_labels, beta
        ),
        views,
    )
    torch.testing.assert_close(value, official_value, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grad, official_grad, rtol=1e-6, atol=1e-9)


def test_hscl_matches_official_code_value_where_it_detaches_weights(generator):
    """For beta < 1 the official code detaches its weights: only the values can agree."""
    views, image_labels = _two_views(generator)
    b = len(image_labels)
    with torch.no_grad():
        value = hscl(views, image_labels.repeat(2), temperature=0.5, beta=0.5)
        official = ref.official_hscl_hard(
            F.normalize(views[:b], dim=1), F.normalize(views[b:], dim=1), image_labels, 0.5
        )
    torch.testing.assert_close(value, official, rtol=1e-6, atol=1e-9)


def test_hscl_beta_0_matches_official_scl_baseline(generator, value_and_grad):
    views, image_labels = _two_views(generator)
    b = len(image_labels)
    value, grad = value_and_grad(
        lambda v: hscl(v, image_labels.repeat(2), temperature=0.5, beta=0.0), views
    )
    official_value, official_grad = value_and_grad(
        lambda v: ref.official_scl_easy(
            F.normalize(v[:b], dim=1), F.normalize(v[b:], dim=1), image_labels
        ),
        views,
    )
    torch.testing.assert_close(value, official_value, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grad, official_grad, rtol=1e-6, atol=1e-9)


def test_hscl_kernel_returns_pair_sums_and_counts(generator):
    x, labels = _batch("mixed_with_singletons", generator)
    z = F.normalize(x, dim=1)
    anchors = torch.arange(len(labels))
    sums, counts = dense_hscl_terms(z, labels, anchors, 0.5, 1.0, len(labels) - 2)
    expected_counts = [sum(int(w == v) for w in labels.tolist()) - 1 for v in labels.tolist()]
    assert counts.tolist() == expected_counts
    assert sums[counts == 0].eq(0).all()
    torch.testing.assert_close(
        sums.sum() / counts.sum(), ref.hscl_ref(x, labels, 0.5, 1.0), rtol=1e-6, atol=1e-9
    )


# ---------------------------------------------------------------- no valid anchor


@pytest.mark.parametrize(
    "loss_fn, labels",
    [
        (lambda x, y: supcon(x, y), [0, 1, 2, 3]),  # all distinct: no positive
        (lambda x, y: supcon(x, y, hardness=1.0), [7]),  # a single row
        (lambda x, y: hscl(x, y), [2, 2, 2, 2]),  # one class: no negative
        (lambda x, y: hscl(x, y), [0, 1, 2]),  # no positive
    ],
)
def test_no_valid_anchor_gives_exact_zero_on_graph_with_warning(loss_fn, labels, generator):
    y = torch.tensor(labels)
    x = torch.randn(len(y), 4, generator=generator, dtype=torch.float64, requires_grad=True)
    with pytest.warns(NoValidAnchorsWarning, match="loss is 0") as record:
        loss = loss_fn(x, y)
    assert record[0].filename == __file__  # the warning points at the caller's line
    assert loss.item() == 0.0 and loss.requires_grad
    (grad,) = torch.autograd.grad(loss, x)
    assert grad.eq(0).all()


def test_empty_batch_warns_and_returns_zero():
    x = torch.zeros(0, 3, requires_grad=True)
    with pytest.warns(NoValidAnchorsWarning):
        assert supcon(x, torch.zeros(0, dtype=torch.long)).item() == 0.0


def test_valid_batch_does_not_warn(generator):
    x, labels = _batch("mixed_with_singletons", generator)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        supcon(x, labels)
        hscl(x, labels)


def test_one_class_supcon_uses_positives_only(generator, value_and_grad):
    """No negatives: D_i is the sum over positives alone (LOSSES.md), for every hardness."""
    x, labels = _batch("one_class", generator)
    for hardness in (0.0, 1.0):
        _assert_matches_reference(
            value_and_grad,
            lambda v, h=hardness: supcon(v, labels, temperature=0.2, hardness=h),
            lambda v, h=hardness: ref.supcon_ref(v, labels, 0.2, h),
            x,
        )


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("loss_fn", [supcon, hscl])
def test_non_finite_rows_are_named(loss_fn, generator):
    x, labels = _batch("pairs", generator)
    x[3, 1] = float("nan")
    x[6, 0] = float("inf")
    with pytest.raises(ValueError, match=r"rows 3, 6"):
        loss_fn(x, labels)


@pytest.mark.parametrize("loss_fn", [supcon, hscl])
def test_label_shape_mismatch_names_both_shapes(loss_fn, generator):
    x = torch.randn(5, 4, generator=generator)
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(4,\)"):
        loss_fn(x, torch.tensor([0, 0, 1, 1]))


@pytest.mark.parametrize("loss_fn", [supcon, hscl])
@pytest.mark.parametrize(
    "bad_labels",
    [
        torch.tensor([0.0, 0.0, 1.0, 1.0]),
        torch.tensor([True, True, False, False]),
        [0, 0, 1, 1],
    ],
    ids=["float", "bool", "list"],
)
def test_labels_must_be_an_integer_tensor(loss_fn, bad_labels, generator):
    x = torch.randn(4, 3, generator=generator)
    with pytest.raises(TypeError, match="labels must be"):
        loss_fn(x, bad_labels)


def test_x_must_be_a_2d_float_tensor():
    with pytest.raises(ValueError, match="2-D"):
        supcon(torch.randn(4), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(TypeError, match="floating-point"):
        supcon(torch.ones(4, 2, dtype=torch.long), torch.tensor([0, 0, 1, 1]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0.0},
        {"temperature": -0.1},
        {"temperature": float("nan")},
        {"hardness": float("nan")},
        {"hardness": float("inf")},
        {"chunk_size": 0},
        {"chunk_size": 2.5},
        {"chunk_size": True},
    ],
)
def test_supcon_rejects_bad_arguments(kwargs, generator):
    x, labels = _batch("pairs", generator)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        supcon(x, labels, **kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"beta": float("nan")}, {"num_negatives": 0}, {"num_negatives": 2.0}]
)
def test_hscl_rejects_bad_arguments(kwargs, generator):
    x, labels = _batch("pairs", generator)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        hscl(x, labels, **kwargs)


def test_chunk_size_is_accepted_and_does_not_change_the_result(generator):
    x, labels = _batch("sixteen_random", generator)
    torch.testing.assert_close(supcon(x, labels, chunk_size=4), supcon(x, labels))
    torch.testing.assert_close(hscl(x, labels, chunk_size=3), hscl(x, labels))


@pytest.mark.parametrize("label_dtype", [torch.int32, torch.int16, torch.uint8])
def test_any_integer_label_dtype_gives_the_same_loss(label_dtype, generator):
    x, labels = _batch("mixed_with_singletons", generator)
    torch.testing.assert_close(supcon(x, labels.to(label_dtype)), supcon(x, labels))
    torch.testing.assert_close(hscl(x, labels.to(label_dtype)), hscl(x, labels))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_labels_on_another_device_are_moved(generator):
    x, labels = _batch("pairs", generator)
    torch.testing.assert_close(supcon(x.cuda(), labels).cpu(), supcon(x, labels))


# ---------------------------------------------------------------- numerical safety


def _finite_value_and_grad(loss_fn, x):
    x = x.detach().clone().requires_grad_(True)
    loss = loss_fn(x)
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(loss).all(), f"loss {loss}"
    assert torch.isfinite(grad).all(), "non-finite gradient"
    return loss, grad


LOSS_VARIANTS = {
    "supcon": lambda t: lambda x, y: supcon(x, y, temperature=t),
    "supcon_hard": lambda t: lambda x, y: supcon(x, y, temperature=t, hardness=1.0),
    "supcon_negative_hardness": lambda t: lambda x, y: supcon(x, y, temperature=t, hardness=-1.0),
    "hscl": lambda t: lambda x, y: hscl(x, y, temperature=t, beta=1.0),
    "hscl_beta_5": lambda t: lambda x, y: hscl(x, y, temperature=t, beta=5.0),
    "scl": lambda t: lambda x, y: hscl(x, y, temperature=t, beta=0.0),
}


@pytest.mark.parametrize("variant", list(LOSS_VARIANTS))
@pytest.mark.parametrize("temperature", [0.01, 1e-3])
def test_small_temperature_with_big_logits_stays_finite_and_accurate(
    variant, temperature, generator
):
    """Near-identical rows across classes make s/t ~ 1/t; float32 must still agree with the
    float64 computation (plain exp would overflow in both)."""
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    base = torch.randn(1, 8, generator=generator, dtype=torch.float64)
    x = base + 0.3 * torch.randn(8, 8, generator=generator, dtype=torch.float64)
    loss_fn = LOSS_VARIANTS[variant](temperature)
    loss32, grad32 = _finite_value_and_grad(lambda v: loss_fn(v, labels), x.float())
    loss64, grad64 = _finite_value_and_grad(lambda v: loss_fn(v, labels), x)
    assert loss64 > 1.0  # the logits really are large
    torch.testing.assert_close(loss32.double(), loss64, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(grad32.double(), grad64, rtol=1e-3, atol=1e-3 * grad64.abs().max())


@pytest.mark.parametrize("variant", list(LOSS_VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_half_precision_inputs_give_finite_float32_values_and_grads(variant, dtype, generator):
    x, labels = _batch("sixteen_random", generator, dim=16)
    loss_fn = LOSS_VARIANTS[variant](0.1)
    loss, grad = _finite_value_and_grad(lambda v: loss_fn(v, labels), x.to(dtype))
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    reference = loss_fn(x.to(dtype).double(), labels)  # same rounded inputs, in float64
    torch.testing.assert_close(loss.double(), reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", list(LOSS_VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_norms_from_1e_minus_6_to_1e6_and_zero_rows(variant, dtype, generator):
    x, labels = _batch("sixteen_random", generator)
    scales = torch.logspace(-6, 6, len(labels), dtype=torch.float64)[:, None]
    x = x / x.norm(dim=1, keepdim=True) * scales
    x[4] = 0.0  # a zero row: F.normalize leaves it at 0, no NaN
    _finite_value_and_grad(lambda v: LOSS_VARIANTS[variant](0.1)(v, labels), x.to(dtype))


@pytest.mark.parametrize("variant", list(LOSS_VARIANTS))
def test_masked_entries_do_not_produce_nan_gradients(variant, generator):
    """Anchors with no positive and anchors with no negative in the same batch."""
    labels = torch.tensor([0, 0, 0, 1, 2])  # 1 and 2 are singletons
    x = torch.randn(5, 3, generator=generator)
    _finite_value_and_grad(lambda v: LOSS_VARIANTS[variant](0.05)(v, labels), x)
    ones = torch.tensor([4, 4, 4])  # no negatives anywhere (hscl: warns, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoValidAnchorsWarning)
        _finite_value_and_grad(lambda v: LOSS_VARIANTS[variant](0.05)(v, ones), x[:3])


@pytest.mark.parametrize("variant", ["supcon", "supcon_hard", "hscl"])
def test_autocast_does_not_lower_the_precision_of_similarities(variant, generator):
    x, labels = _batch("sixteen_random", generator, dim=32, dtype=torch.float32)
    loss_fn = LOSS_VARIANTS[variant](0.05)
    expected = loss_fn(x, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(x, labels)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
