"""Errors a user can cause and fix. The command line prints their message and exits with code 2."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input, configuration or state that the user can fix; the message says how."""


class DataError(UserError):
    """A data file or array cannot be used as given (missing, empty, malformed, wrong column...)."""


class ConfigError(UserError):
    """An option, method name or configuration value is invalid."""


class OptionError(ConfigError):
    """One option is unknown or has a bad value, said in the words of where it came from.

    `problem` holds `{option}` (and `{suggestion}`) where the option's name goes: Python code
    reads `'batch_size'`, the command line `--batch-size`, a config file `key 'batch_size'`.
    """

    def __init__(
        self, name: str, problem: str, suggestion: str | None = None, others: tuple = ()
    ) -> None:
        """`others`: option names listed where `{others}` stands (e.g. a method's options)."""
        self.name, self.problem, self.suggestion, self.others = name, problem, suggestion, others
        self.source: str | None = None  # a config file's path, when the option came from one
        super().__init__(self.render("python"))

    def render(self, style: str) -> str:
        """The message for `style`: "python" (Refiner keywords) or "cli" (flags)."""

        def word(name: str) -> str:
            if style == "cli" and self.source is None:
                return "--" + name.replace("_", "-")
            return repr(name)

        text = self.problem.format(
            option=word(self.name),
            suggestion=word(self.suggestion or ""),
            others=", ".join(map(word, self.others)) or "none",
        )
        if self.source is not None:
            return f"config file {self.source}, key {self.name!r}: {text}"
        return text

    def __str__(self) -> str:
        return self.render("python")
