"""`Refiner.fit(X, y, X_unlabelled=...)`: the stages, what the fit says about the unlabelled
rows, and the errors for unlabelled rows it cannot use."""

from __future__ import annotations

import numpy as np
import pytest
from semi_data import as_images, few_labelled

from contrastkit import Refiner
from contrastkit.errors import ConfigError, DataError, OptionError
from contrastkit.refiner.pseudo_labels import confident_rows

FAST = dict(epochs=3, batch_size=30, quiet=True)


@pytest.fixture(scope="module")
def data():
    return few_labelled()


def _stages(refiner: Refiner) -> list[str]:
    return list(dict.fromkeys(row["stage"] for row in refiner.history_))


def test_default_stages_supervised_then_pseudo_labelled(data):
    X, y, U, yu, _, _ = data
    r = Refiner(**FAST).fit(X, y, X_unlabelled=U)
    assert _stages(r) == ["supervised", "pseudo_labelled"]
    assert r.rows_["train"] == len(X) and r.rows_["unlabelled"] == len(U)
    assert 0 < r.rows_["pseudo_labelled"] <= len(U)
    assert r.unlabelled_ == {
        "rows": len(U), "unlabelled_method": "none", "pseudo_labels": True,
        "pseudo_label_margin": 0.05, "pseudo_label_rounds": 1, "unlabelled": len(U),
        "pseudo_labelled": r.rows_["pseudo_labelled"],
    }  # fmt: skip
    steps = [row["step"] for row in r.history_]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # counted on across stages
    assert "pseudo_labelled_loss" in r.history_[-1] and "loss" in r.history_[0]


def test_the_pseudo_labels_are_those_of_the_supervised_model(data, monkeypatch):
    """Stage 3 trains on the rows whose margin under the stage-2 model clears the threshold."""
    X, y, U, _, _, _ = data
    alone = Refiner(**FAST).fit(X, y)  # stage 2 on its own: the same seed, the same steps
    Z_l, Z_u = alone.transform(X), alone.transform(U)
    expected, _ = confident_rows(Z_l, np.searchsorted(np.unique(y), y), Z_u, 0.2)
    r = Refiner(**FAST, pseudo_label_margin=0.2).fit(X, y, X_unlabelled=U)
    assert r.rows_["pseudo_labelled"] == len(expected)


def test_a_second_round_labels_with_the_first_rounds_model_and_trains_a_fresh_adapter(
    data, tmp_path
):
    X, y, U, _, _, _ = data
    once = Refiner(**FAST, pseudo_label_margin=0.2).fit(X, y, X_unlabelled=U)
    expected, _ = confident_rows(once.transform(X), np.searchsorted(np.unique(y), y), once.transform(U), 0.2)  # fmt: skip
    options = dict(FAST, pseudo_label_margin=0.2, pseudo_label_rounds=2)
    r = Refiner(**options).fit(X, y, X_unlabelled=U, checkpoint_dir=tmp_path)
    assert _stages(r) == ["supervised", "pseudo_labelled", "pseudo_labelled_2"]
    assert r.rows_["pseudo_labelled"] == len(expected) and r.unlabelled_["pseudo_label_rounds"] == 2
    assert (tmp_path / "pseudo-labelled-2" / "latest.json").exists()
    assert not np.allclose(r.transform(U), once.transform(U), atol=1e-3)
    again = Refiner(**options).fit(X, y, X_unlabelled=U, checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_allclose(again.transform(U), r.transform(U), atol=1e-6)


def test_a_self_supervised_stage_comes_first(data, tmp_path, short_self_supervised):
    X, y, U, _, _, _ = data
    r = Refiner(**FAST, unlabelled_method="simclr", pseudo_labels=False)
    r.fit(X, y, X_unlabelled=U, checkpoint_dir=tmp_path)
    assert _stages(r) == ["self_supervised", "supervised"]
    assert "self_supervised_loss" in r.history_[0]
    assert (tmp_path / "self-supervised" / "latest.json").exists()
    assert (tmp_path / "latest.json").exists() and not (tmp_path / "pseudo-labelled").exists()
    assert "pseudo_labelled" not in r.rows_


def test_images_with_a_self_supervised_stage(data, short_self_supervised):
    X, y, U, _, _, _ = data
    r = Refiner(**FAST, unlabelled_method="simclr", pseudo_labels=True, pseudo_label_margin=0.0)
    r.fit(as_images(X), y, X_unlabelled=as_images(U[:64]))
    assert _stages(r) == ["self_supervised", "supervised", "adapter", "pseudo_labelled", "pseudo_labelled_2"]  # fmt: skip
    assert np.isfinite(r.transform(as_images(U[:5]))).all()


def test_no_confident_row_keeps_the_supervised_model(data):
    X, y, U, _, _, _ = data
    with pytest.warns(UserWarning, match="none took a pseudo-label"):
        r = Refiner(**FAST, pseudo_label_margin=2.0).fit(X, y, X_unlabelled=U)
    assert _stages(r) == ["supervised"] and r.rows_["pseudo_labelled"] == 0


@pytest.mark.parametrize(
    ("options", "unlabelled", "error", "match"),
    [
        ({}, ["a text", "another"], DataError, "unlabelled rows are text but the training rows are vectors"),
        ({}, np.ones((4, 3), np.float32), DataError, "vectors have 3 dimensions but the training vectors 64"),
        ({}, [], DataError, "unlabelled rows: the input is empty"),
        ({}, np.zeros((0, 64), np.float32), DataError, "empty|at least"),
        ({"pseudo_labels": False}, None, ConfigError, "would not be used"),
        ({"unlabelled_method": "simcse"}, None, ConfigError, "takes text, but the rows are vectors"),
        ({"method": "simclr"}, None, ConfigError, "trains without classes"),
    ],
)  # fmt: skip
def test_unusable_unlabelled_rows_are_refused(data, options, unlabelled, error, match):
    X, y, U, _, _, _ = data
    with pytest.raises(error, match=match):
        Refiner(**FAST, **options).fit(X, y, X_unlabelled=U if unlabelled is None else unlabelled)


@pytest.mark.parametrize("option", [{"pseudo_labels": True}, {"pseudo_label_margin": 0.1}, {"unlabelled_method": "simclr"}])  # fmt: skip
def test_unlabelled_options_without_unlabelled_rows_are_refused(data, option):
    X, y, _, _, _, _ = data
    with pytest.raises(OptionError, match="applies to unlabelled rows"):
        Refiner(**FAST, **option).fit(X, y)


def test_pseudo_labels_are_off_by_default_in_finetune_mode(data):
    """Measured not to help a fine-tuned model (config/unlabelled.py): images train a CNN in
    finetune mode, so unlabelled images need an explicit stage."""
    X, y, U, _, _, _ = data
    with pytest.raises(ConfigError, match="pseudo-labels are off .the default in finetune mode"):
        Refiner(**FAST).fit(as_images(X), y, X_unlabelled=as_images(U[:20]))


@pytest.mark.parametrize(
    ("kind", "mode", "default"),
    [("text", "adapter", True), ("vectors", "adapter", True), ("text", "finetune", True), ("images", "finetune", False)],
)  # fmt: skip
def test_pseudo_labels_are_on_by_default_where_measured_to_help(kind, mode, default):
    from contrastkit.config.refine_config import RefineConfig
    from contrastkit.config.unlabelled import plan_unlabelled

    assert plan_unlabelled(RefineConfig(), kind, mode).pseudo_labels is default
    assert plan_unlabelled(RefineConfig(), kind, mode).pseudo_label_rounds == (2 if mode == "finetune" else 1)  # fmt: skip
    assert plan_unlabelled(RefineConfig(pseudo_labels=not default), kind, mode).pseudo_labels is not default  # fmt: skip


def test_finetune_mode_trains_an_adapter_over_the_frozen_fine_tuned_model(data, tmp_path):
    """Finetune mode with pseudo-labels: the fine-tuned CNN stops training after the supervised
    stage (it embeds as a labelled-only fit of the same seed), an adapter over it trains with
    an adapter's plan (not the fine-tuning's epochs), and the model saves, loads and resumes."""
    from contrastkit.config.defaults import plan_training
    from contrastkit.config.unlabelled import adapter_stage_config

    X, y, U, _, _, _ = data
    images, unlabelled = as_images(X), as_images(U[:64])
    options = dict(FAST, mode="finetune", pseudo_labels=True, pseudo_label_margin=0.0)
    alone = Refiner(**FAST, mode="finetune").fit(images, y)
    r = Refiner(**options).fit(images, y, X_unlabelled=unlabelled, checkpoint_dir=tmp_path / "run")
    assert _stages(r) == ["supervised", "adapter", "pseudo_labelled", "pseudo_labelled_2"]
    assert r.rows_["pseudo_labelled"] == 64  # margin 0: every row
    assert r.unlabelled_["pseudo_label_rounds"] == 2  # the default in finetune mode
    assert r.unlabelled_["pseudo_labels_trained"] == "an adapter over the fine-tuned model"
    Z_tuned, Z = r.backbone_.tuned.embed(unlabelled), r.transform(unlabelled)
    np.testing.assert_allclose(Z_tuned, alone.transform(unlabelled), atol=1e-5)
    assert not np.allclose(Z, Z_tuned, atol=1e-3)
    plan = plan_training(adapter_stage_config(r.config), "images", "adapter", len(X), 10, "supcon")
    adapter_epochs = {row["epoch"] for row in r.history_ if row["stage"] == "adapter"}
    assert len(adapter_epochs) == plan.epochs != FAST["epochs"]
    assert r.backbone_.encoder.scale == plan.residual_scale == 0.5
    loaded = Refiner.load(r.save(tmp_path / "model"))
    assert (tmp_path / "model" / "tuned" / "encoder.safetensors").is_file()
    np.testing.assert_allclose(loaded.transform(unlabelled), Z, atol=1e-6)
    np.testing.assert_allclose(loaded.base_transform(unlabelled), r.base_transform(unlabelled))
    again = Refiner(**options).fit(images, y, X_unlabelled=unlabelled, checkpoint_dir=tmp_path / "run", resume=True)  # fmt: skip
    assert (tmp_path / "run" / "adapter" / "latest.json").exists()
    np.testing.assert_allclose(again.transform(unlabelled), Z, atol=1e-6)
