"""The refinement configuration: a pydantic model built from `contrastkit.config.options`.

`None` means "choose by principle from the data" (see `contrastkit.config.defaults`).
Errors name the option the way its author wrote it: `OptionError` renders `'batch_size'` for
Python, `--batch-size` on the command line, and the file and key for a config file.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from contrastkit.config.options import BY_NAME, LOSS_OPTIONS, METHOD_OPTIONS, OPTIONS
from contrastkit.errors import ConfigError, OptionError


class _Base(BaseModel):
    # allow_inf_nan=False: a NaN or infinite option (lr, temperature, hardness...) is refused
    # here, not discovered as a diverged run. strict=False lets "3" from YAML be an int.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )

    def loss_options(self) -> dict:
        """The loss options the user set (the others keep the plan's or the loss's defaults)."""
        return {k: getattr(self, k) for k in LOSS_OPTIONS if getattr(self, k) is not None}

    def method_options(self) -> dict:
        """Every option the user set that belongs to the method (its loss's and its own)."""
        return {k: getattr(self, k) for k in METHOD_OPTIONS if getattr(self, k) is not None}

    def set_options(self) -> dict:
        """Every option whose value differs from its declared default."""
        return {
            o.name: getattr(self, o.name) for o in OPTIONS if getattr(self, o.name) != o.default
        }


def _field(option) -> tuple[Any, Any]:
    annotation: Any = Literal[option.choices] if option.choices else option.type
    if option.default is None:
        annotation = annotation | None
    bounds = {
        k: getattr(option, k) for k in ("ge", "gt", "le", "lt") if getattr(option, k) is not None
    }
    return annotation, Field(option.default, description=option.help, **bounds)


RefineConfig = create_model("RefineConfig", __base__=_Base, **{o.name: _field(o) for o in OPTIONS})


def make_config(**values: Any) -> RefineConfig:
    """Build a config; the first problem found raises OptionError naming the option."""
    unknown = [name for name in values if name not in BY_NAME]
    if unknown:
        raise unknown_option(unknown[0])
    try:
        return RefineConfig(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "config"
        value = err.get("input")
        shown = "" if isinstance(value, float) and not math.isfinite(value) else f" {value!r}"
        raise OptionError(name, f"invalid value{shown} for {{option}}: {err['msg']}") from None


def unknown_option(name: str) -> OptionError:
    close = difflib.get_close_matches(name, list(BY_NAME), n=1)
    if close:
        return OptionError(name, "unknown option {option}; did you mean {suggestion}?", close[0])
    return OptionError(
        name, "unknown option {option}; see `contrastkit refine --help` for the options"
    )


def load_config_file(path: str | Path) -> dict:
    """The options of a YAML (or JSON) config file, each key and value checked: an unknown key
    or a bad value raises OptionError naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"config file {path} is not valid YAML ({what}{where}); fix it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value pairs")
    # Keys mirror the flags, so accept both `batch-size` and `batch_size`.
    options = {str(k).replace("-", "_"): v for k, v in data.items()}
    try:
        make_config(**options)
    except OptionError as exc:
        exc.source = str(path)
        raise
    return options
