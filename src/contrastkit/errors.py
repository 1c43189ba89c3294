"""Errors a user can cause and fix. The command line prints their message and exits with code 2."""


class UserError(ValueError):
    """Bad input, configuration or state that the user can fix; the message says how."""


class DataError(UserError):
    """A data file or array cannot be used as given (missing, empty, malformed, wrong column...)."""


class ConfigError(UserError):
    """An option, method name or configuration value is invalid."""
