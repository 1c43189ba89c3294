"""The trainer's parts: schedule, configuration, defaults, validation split and score, RNG and
optimiser state, atomic writes, device resolution."""

from __future__ import annotations

import math
import os
import random
import stat

import numpy as np
import pytest
import torch
import yaml

from contrastkit.config.defaults import plan_training
from contrastkit.config.refine_config import RefineConfig, load_config_file, make_config
from contrastkit.data.splits import stratified_split
from contrastkit.errors import ConfigError
from contrastkit.evaluation import knn_score
from contrastkit.io.atomic import default_mode, write_bytes_atomic, write_json_atomic
from contrastkit.training.distributed import DistInfo, init_distributed, resolve_device
from contrastkit.training.schedule import warmup_cosine
from contrastkit.training.seed import rng_state, seed_everything, set_rng_state
from contrastkit.training.state import optimizer_from_flat, optimizer_to_flat


# -- schedule -------------------------------------------------------------------------------
def _lrs(total: int, warmup: float, base: float = 2.0) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = warmup_cosine(opt, total, warmup)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_at_known_steps():
    lrs = _lrs(total=110, warmup=1 / 11)  # 10 warm-up steps, then 100 cosine steps
    assert lrs[0] == pytest.approx(2.0 * 1 / 10)
    assert lrs[4] == pytest.approx(2.0 * 5 / 10)
    assert lrs[9] == pytest.approx(2.0)
    assert lrs[10] == pytest.approx(2.0)  # cosine starts at its peak
    assert lrs[60] == pytest.approx(1.0)  # half-way through the cosine: half the rate
    assert lrs[35] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lrs[109] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert min(lrs) > 0


def test_no_warmup_starts_at_the_full_rate():
    lrs = _lrs(total=4, warmup=0.0, base=1.0)
    assert lrs == pytest.approx([1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 - 0.5**0.5)])


# -- configuration --------------------------------------------------------------------------
def test_unknown_option_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="'learning_rate'"):
        make_config(learning_rate=0.1)


@pytest.mark.parametrize(
    ("values", "flag"),
    [({"epochs": 0}, "'epochs'"), ({"batch_size": 1}, "'batch_size'"), ({"lr": -1.0}, "'lr'"),
     ({"mode": "frozen"}, "'mode'"), ({"warmup": 1.0}, "'warmup'")],
)  # fmt: skip
def test_invalid_values_are_config_errors_naming_the_option(values, flag):
    with pytest.raises(ConfigError, match=flag):
        make_config(**values)


def test_config_file_keys_mirror_the_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"batch-size": 64, "epochs": 3, "method": "triplet"}))
    options = load_config_file(path)
    assert options == {"batch_size": 64, "epochs": 3, "method": "triplet"}
    assert make_config(**options).batch_size == 64


@pytest.mark.parametrize(
    ("content", "message"),
    [("- a\n- b\n", "mapping"), ("epochs: [1\n", "not valid YAML")],
)
def test_bad_config_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")


def test_loss_options_hold_only_what_the_user_set():
    assert RefineConfig().loss_options() == {}
    assert RefineConfig(temperature=0.05, margin=0.2).loss_options() == {
        "temperature": 0.05,
        "margin": 0.2,
    }


# -- defaults -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "mode", "rows", "classes"),
    [("vectors", "adapter", 1000, 10), ("vectors", "adapter", 200_000, 50),
     ("text", "finetune", 300, 77), ("images", "finetune", 50, 10), ("text", "adapter", 5, 2)],
)  # fmt: skip
def test_planned_hyperparameters_fit_the_data(kind, mode, rows, classes):
    plan = plan_training(RefineConfig(), kind, mode, rows, classes)
    assert 2 <= plan.batch_size <= rows or plan.batch_size == rows
    assert 1 <= plan.m_per_class <= plan.batch_size
    steps = math.ceil(rows / plan.batch_size) * plan.epochs
    assert plan.epochs >= 1 and steps >= min(plan.epochs, 1500)
    assert steps * plan.batch_size >= rows  # every row is seen at least once
    assert plan.lr > 0 and plan.head_lr > 0


@pytest.mark.parametrize(("rows", "epochs"), [(10_003, 10), (5_000, 19), (770, 40), (20, 40)])
def test_text_finetune_epochs_come_from_the_step_budget_up_to_the_cap(rows, epochs):
    plan = plan_training(RefineConfig(), "text", "finetune", rows, 77 if rows > 77 else 4)
    assert plan.epochs == epochs  # 10-shot Banking77 (770 rows) is capped: 520 of 1500 steps
    assert math.ceil(rows / plan.batch_size) * plan.epochs <= 1500 + math.ceil(rows / 64)


def test_user_values_win_over_the_plan():
    config = RefineConfig(epochs=7, batch_size=32, lr=0.5, m_per_class=4)
    plan = plan_training(config, "vectors", "adapter", 1000, 10)
    assert (plan.epochs, plan.batch_size, plan.lr, plan.m_per_class) == (7, 32, 0.5, 4)


@pytest.mark.parametrize(
    ("rows", "classes", "hardness"),
    [(10_003, 77, 1.0), (1000, 10, 1.0), (999, 10, 0.0), (770, 77, 0.0), (385, 77, 0.0)],
)
def test_supcon_adapter_tilts_towards_hard_negatives_only_when_classes_are_dense(
    rows, classes, hardness
):
    plan = plan_training(RefineConfig(), "text", "adapter", rows, classes)
    assert plan.option_defaults["hardness"] == hardness


@pytest.mark.parametrize(
    ("config", "mode"),
    [
        (RefineConfig(hardness=0.0), "adapter"),  # the user's choice, even plain SupCon, wins
        (RefineConfig(hardness=2.5), "adapter"),
        (RefineConfig(), "finetune"),  # measured for the adapter only
        (RefineConfig(method="hscl"), "adapter"),  # hscl has its own beta
        (RefineConfig(method="triplet"), "adapter"),
    ],
)
def test_no_hardness_default_where_the_user_chose_or_it_was_not_measured(config, mode):
    assert "hardness" not in plan_training(config, "text", mode, 10_003, 77).option_defaults


def test_batch_never_exceeds_the_rows():
    plan = plan_training(RefineConfig(batch_size=512), "vectors", "adapter", 40, 4)
    assert plan.batch_size == 40


# -- validation -----------------------------------------------------------------------------
def test_stratified_split_holds_out_a_fraction_of_every_class():
    labels = np.repeat([0, 1, 2, 3], [40, 20, 10, 1])
    train, val = stratified_split(labels, 0.25, seed=0)
    assert np.intersect1d(train, val).size == 0
    assert np.union1d(train, val).tolist() == list(range(len(labels)))
    held_out = np.bincount(labels[val], minlength=4).tolist()
    assert held_out == [10, 5, 2, 0]  # rounded per class; the single row stays in training
    assert set(labels[train]) == {0, 1, 2, 3}
    again, _ = stratified_split(labels, 0.25, seed=0)
    other, _ = stratified_split(labels, 0.25, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_knn_score_matches_sklearn_one_nearest_neighbour():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 8)).astype(np.float32)
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    val = rng.normal(size=(25, 8)).astype(np.float32)
    val /= np.linalg.norm(val, axis=1, keepdims=True)
    y_train, y_val = rng.integers(0, 3, 60), rng.integers(0, 3, 25)
    reference = KNeighborsClassifier(1, metric="cosine").fit(train, y_train).score(val, y_val)
    assert knn_score(train, y_train, val, y_val) == pytest.approx(reference)


# -- RNG and optimiser state -----------------------------------------------------------------
def test_rng_state_round_trip_restores_python_numpy_and_torch():
    seed_everything(3)
    saved = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(99)
    set_rng_state(saved)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_seed_everything_is_reproducible():
    seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(7)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])


def test_optimizer_state_round_trip_continues_identically():
    def make():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        return model, torch.optim.AdamW(model.parameters(), lr=0.1)

    def step(model, opt, seed):
        torch.manual_seed(seed)
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()

    model, opt = make()
    for s in range(3):
        step(model, opt, s)
    tensors, meta = optimizer_to_flat(opt)
    tensors = {k: v.clone() for k, v in tensors.items()}  # as read back from a file
    yaml.safe_dump(meta)  # the non-tensor part is plain data
    model_b, opt_b = make()
    model_b.load_state_dict(model.state_dict())
    optimizer_from_flat(opt_b, tensors, meta)
    step(model, opt, 10)
    step(model_b, opt_b, 10)
    for a, b in zip(model.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


# -- atomic writes ---------------------------------------------------------------------------
def test_atomic_write_gives_usual_permissions_and_leaves_no_temporary(tmp_path):
    write_json_atomic(tmp_path / "sub" / "a.json", {"x": 1})
    assert stat.S_IMODE((tmp_path / "sub" / "a.json").stat().st_mode) == default_mode()
    assert os.listdir(tmp_path / "sub") == ["a.json"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    write_bytes_atomic(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]


# -- devices and processes ------------------------------------------------------------------
def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu-of-dreams")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")
        assert resolve_device("auto") == torch.device("cpu")


def test_single_process_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed(torch.device("cpu"))
    assert info == DistInfo() and not info.enabled and info.is_main
