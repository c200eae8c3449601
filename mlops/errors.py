"""One exception type for every mistake a user can make, so entry points can print it cleanly."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class UserInputError(Exception):
    """A problem with the user's file, config or request, with what to fix in its message.

    Programming errors keep their tracebacks; these are printed as one line by
    :func:`report_user_errors`.
    """


class DataValidationError(UserInputError, ValueError):
    """An input table does not have the shape or content the toolkit needs."""


class ConfigError(UserInputError, ValueError):
    """A configuration value is impossible or inconsistent."""


class PermissionDeniedError(UserInputError):
    """The tracking server refused the user a write (or read) on something another user owns."""


def report_user_errors(func: F) -> F:
    """Wrap an entry point so a :class:`UserInputError` ends the program with one clear line.

    Exit status 2 mirrors argparse's convention for usage errors.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserInputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
