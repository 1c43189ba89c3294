"""The option table is the one declaration: the flags, the config keys, Refiner's keywords and
each method's loss keywords all agree with it."""

from __future__ import annotations

import inspect

import pytest
from typer.testing import CliRunner

from contrastkit import Refiner
from contrastkit.cli import app
from contrastkit.config.options import BY_NAME, OPTIONS, options_of
from contrastkit.config.refine_config import RefineConfig, make_config
from contrastkit.errors import ConfigError, OptionError
from contrastkit.methods.base import INTERNAL_LOSS_KEYWORDS
from contrastkit.methods.registry import METHODS


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_methods_loss_options_are_exactly_its_loss_keywords(name):
    spec = METHODS[name]
    declared = {o for o in options_of(name) if BY_NAME[o].group == "loss"}
    if spec.loss is None:
        assert declared == set(), name
        return
    params = inspect.signature(spec.loss).parameters
    keywords = {
        k for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k not in INTERNAL_LOSS_KEYWORDS
    }
    assert declared == keywords, name


def test_every_option_has_a_flag_and_a_config_field():
    result = CliRunner().invoke(app, ["refine", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in OPTIONS:
        assert option.flag in result.output, option.name
        assert option.name in RefineConfig.model_fields, option.name
        assert RefineConfig.model_fields[option.name].default == option.default, option.name


def test_every_option_named_by_a_method_is_one_it_takes():
    for option in OPTIONS:
        for method in option.methods:
            assert method in METHODS, (option.name, method)


def test_bounds_come_from_the_declaration():
    for option in OPTIONS:
        if option.ge is None and option.gt is None:
            continue
        low = option.ge if option.ge is not None else option.gt
        bad = low - 1 if option.ge is not None else low
        with pytest.raises(OptionError, match=f"'{option.name}'"):
            make_config(**{option.name: option.type(bad)})


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seeds_numpy_cannot_take_are_refused_everywhere(seed):
    with pytest.raises(ConfigError, match="'seed'"):
        Refiner(seed=seed)


def test_python_errors_speak_python_and_suggest_the_option_meant():
    with pytest.raises(OptionError) as info:
        Refiner(epoch=3)
    assert str(info.value) == "unknown option 'epoch'; did you mean 'epochs'?"
    assert info.value.render("cli") == "unknown option --epoch; did you mean --epochs?"
