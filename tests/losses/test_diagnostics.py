"""hard_negative_diagnostics: UCL, H-UCL, SCL, H-SCL side by side, against the papers' code."""

from __future__ import annotations

import math

import pytest
import torch
from ss_helpers import draw
from ss_references import hcl_official, hscl_official, nt_xent_ref, scl_official

from contrastkit.losses import hard_negative_diagnostics

KEYS = {"ucl", "hucl", "scl", "hscl", "hscl_le_hucl"}


def clustered_views(b: int = 12, classes: int = 3, spread: float = 0.3, seed: int = 0):
    """Two noisy views of items whose embeddings cluster by class (the paper's Assumption 1)."""
    labels = torch.arange(b) % classes
    centres = 3 * draw(classes, 6, seed=seed)
    items = centres[labels] + spread * draw(b, 6, seed=seed + 1)
    z1 = items + 0.1 * spread * draw(b, 6, seed=seed + 2)
    z2 = items + 0.1 * spread * draw(b, 6, seed=seed + 3)
    return z1, z2, labels


@pytest.mark.parametrize("t,tau_plus,beta", [(0.5, 0.1, 1.0), (0.5, 0.0, 2.0), (0.2, 0.05, 0.5)])
def test_each_quantity_matches_the_papers_code(t, tau_plus, beta):
    z1, z2, labels = (
        draw(10, 5, seed=1),
        draw(10, 5, seed=2),
        torch.tensor([0, 1, 2, 0, 1, 2, 3, 3, 0, 1]),
    )
    result = hard_negative_diagnostics(z1, z2, labels, temperature=t, tau_plus=tau_plus, beta=beta)
    assert set(result) == KEYS
    both, both_labels = torch.cat([z1, z2]), labels.repeat(2)
    assert math.isclose(result["ucl"], nt_xent_ref(z1, z2, t).item(), rel_tol=1e-9)
    assert math.isclose(result["ucl"], hcl_official(z1, z2, t, 0.0, 0.0).item(), rel_tol=1e-9)
    assert math.isclose(
        result["hucl"], hcl_official(z1, z2, t, tau_plus, beta).item(), rel_tol=1e-9
    )
    assert math.isclose(result["scl"], scl_official(both, both_labels, t).item(), rel_tol=1e-9)
    assert math.isclose(
        result["hscl"], hscl_official(both, both_labels, t, beta).item(), rel_tol=1e-9
    )
    assert result["hscl_le_hucl"] == (result["hscl"] <= result["hucl"])
    assert all(isinstance(result[k], float) for k in KEYS - {"hscl_le_hucl"})
    assert isinstance(result["hscl_le_hucl"], bool)


def test_with_distinct_labels_supervision_adds_nothing():
    # Every item its own class: N(i) is every non-partner row and Q = 2B - 2 = M, so
    # SCL = UCL and, without debiasing, H-SCL = H-UCL.
    z1, z2 = draw(9, 4, seed=3), draw(9, 4, seed=4)
    result = hard_negative_diagnostics(z1, z2, torch.arange(9), tau_plus=0.0, beta=1.5)
    assert math.isclose(result["scl"], result["ucl"], rel_tol=1e-9)
    assert math.isclose(result["hscl"], result["hucl"], rel_tol=1e-9)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_the_papers_inequality_holds_on_class_clustered_embeddings(beta):
    # Same-class rows are the closest negatives of H-UCL; H-SCL drops them, so its loss is lower.
    z1, z2, labels = clustered_views()
    result = hard_negative_diagnostics(z1, z2, labels, tau_plus=0.0, beta=beta)
    assert result["hscl_le_hucl"] and result["hscl"] < result["hucl"]
    assert result["scl"] < result["ucl"]


def test_the_inequality_can_fail_and_the_flag_says_so():
    # Against the assumption: class-mates are antipodal while the two views agree, so H-SCL's
    # terms for same-class positive pairs are large and it exceeds H-UCL.
    base = draw(6, 4, seed=8)
    items = torch.cat([base, -base])
    labels = torch.arange(6).repeat(2)
    z1, z2 = items + 0.01 * draw(12, 4, seed=9), items + 0.01 * draw(12, 4, seed=10)
    result = hard_negative_diagnostics(z1, z2, labels, tau_plus=0.0, beta=1.0)
    assert result["hscl"] > result["hucl"] and result["hscl_le_hucl"] is False


def test_inputs_keep_no_graph():
    z1 = draw(6, 4, seed=5).requires_grad_(True)
    result = hard_negative_diagnostics(z1, draw(6, 4, seed=6), torch.tensor([0, 0, 1, 1, 2, 2]))
    assert z1.grad is None and all(math.isfinite(v) for v in result.values())


def test_bad_labels_and_shapes():
    z = draw(6, 4, seed=7)
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\)"):
        hard_negative_diagnostics(z, z, torch.tensor([0, 1, 0]))
    with pytest.raises(TypeError, match="integer"):
        hard_negative_diagnostics(z, z, torch.zeros(6))
    with pytest.raises(ValueError, match=r"\(6, 4\).*\(5, 4\)"):
        hard_negative_diagnostics(z, z[:5], torch.zeros(6, dtype=torch.long))
