"""Small checks that read one config value by its dotted key and refuse it in one line.

Every app checks every value it reads before it opens a file or fits anything, so a mistyped
override costs a second, not a half-finished run, and is never answered by a traceback. A refusal
names the key as it is written on the command line, the value given and what is allowed, e.g.::

    backtest.horizon=7.5: must be a whole number of days >= 1
    data.path is required: the CSV or Parquet file of daily counts, e.g. data.path=my_counts.csv

The checks are rules (``WholeNumber(minimum=1, unit="days")``) so one table per app can list every
key with its rule, and the same rule can check a value that is not in the tree as such (an item of
a tuning grid, a member of an ensemble). Works on any OmegaConf config; no Hydra needed.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from mlops.errors import ConfigError


class _Absent:
    """A key that is not in the config at all (as opposed to ``null`` or ``???``)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


class Refused(Exception):
    """Raised inside a rule when a value is not allowed; becomes a :class:`ConfigError` with the key."""


def shown(value: object) -> str:
    """A value as it would be written in a Hydra override (``null``, ``[80,95]``, ``abc``)."""
    if isinstance(value, DictConfig | ListConfig):
        try:
            value = OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException:
            value = OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.strip() and value == value.strip() else repr(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(shown(v) for v in value) + "]"
    return str(value)


def lookup(cfg: DictConfig, key: str, hint: str | None = None, default: object = ABSENT) -> object:
    """The raw value at dotted ``key``; a mandatory value left as ``???`` is refused with ``hint``.

    A key that is not there at all gives ``default`` (ABSENT unless given), so optional keys that
    older configs lack need no special case.
    """
    try:
        value = OmegaConf.select(cfg, key, default=ABSENT, throw_on_missing=True)
    except MissingMandatoryValue:
        raise ConfigError(required_message(key, hint)) from None
    except OmegaConfBaseException as error:  # e.g. an interpolation naming a key that does not exist
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"{key}: cannot be resolved: {first}") from None
    return default if value is ABSENT else value


def required_message(key: str, hint: str | None) -> str:
    return f"{key} is required: {hint}" if hint else f"{key} is required: set {key}=<value>"


def refuse(key: str, value: object, allowed: str) -> ConfigError:
    """The one-line error for ``key=value``, saying what is allowed."""
    return ConfigError(f"{key}={shown(value)}: must be {allowed}")


class Rule:
    """One kind of value. Subclasses implement :meth:`convert` and :attr:`allowed`."""

    nullable: bool = False

    @property
    def allowed(self) -> str:  # pragma: no cover - every rule overrides it
        raise NotImplementedError

    def convert(self, value: object) -> object:  # pragma: no cover
        raise NotImplementedError

    def apply(self, value: object, key: str) -> object:
        """Check a value already read from ``key``; return it converted to a plain Python value."""
        if value is None and self.nullable:
            return None
        if value is ABSENT:
            raise ConfigError(f"{key} is missing from the config: set +{key}=<value> ({self.allowed})")
        try:
            return self.convert(value)
        except Refused:
            allowed = self.allowed + (" or null" if self.nullable else "")
            raise refuse(key, value, allowed) from None

    def check(self, cfg: DictConfig, key: str, hint: str | None = None, default: object = ABSENT) -> object:
        """Read ``key`` from ``cfg`` and check it; return the converted value."""
        return self.apply(lookup(cfg, key, hint, default), key)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_whole(value: object) -> int:
    # A quoted number ('7') is refused too: the jobs hand some values straight to libraries
    # (LightGBM, scikit-learn), which would fail on the string only after the data is read.
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) != int(float(value)):
        raise Refused
    return int(value)


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


@dataclass(frozen=True)
class WholeNumber(Rule):
    """An integer (``7`` or ``7.0``, never ``7.5``, ``'7'``, ``abc`` or ``true``) within bounds."""

    minimum: int | None = None
    maximum: int | None = None
    unit: str = ""
    nullable: bool = False
    what: str = "a whole number"

    @property
    def allowed(self) -> str:
        what = self.what + (f" of {self.unit}" if self.unit else "")
        if self.minimum is not None and self.maximum is not None:
            return f"{what} from {self.minimum} to {self.maximum}"
        return f"{what} {_range_text(self.minimum, self.maximum, False, False)}".rstrip()

    def convert(self, value: object) -> int:
        number = _as_whole(value)
        if self.minimum is not None and number < self.minimum:
            raise Refused
        if self.maximum is not None and number > self.maximum:
            raise Refused
        return number


@dataclass(frozen=True)
class Number(Rule):
    """A finite real number within bounds, each end open or closed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False
    what: str = "a number"

    @property
    def allowed(self) -> str:
        return f"{self.what} {_range_text(self.low, self.high, self.low_open, self.high_open)}".rstrip()

    def convert(self, value: object) -> float:
        if not _is_number(value) or not math.isfinite(float(value)):
            raise Refused
        number = float(value)
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            raise Refused
        if self.high is not None and (number >= self.high if self.high_open else number > self.high):
            raise Refused
        return number


def probability(nullable: bool = False) -> Number:
    """A number strictly between 0 and 1 (a limit, a confidence, a quantile)."""
    return Number(0, 1, low_open=True, high_open=True, nullable=nullable)


def share(nullable: bool = False) -> Number:
    """A share from 0 to 1, both ends allowed."""
    return Number(0, 1, nullable=nullable, what="a share")


@dataclass(frozen=True)
class Flag(Rule):
    """``true`` or ``false`` (a string such as ``yes`` is a typo, not a truth value)."""

    nullable: bool = False

    @property
    def allowed(self) -> str:
        return "true or false"

    def convert(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise Refused
        return value


@dataclass(frozen=True)
class Choice(Rule):
    """One of a few named values."""

    options: tuple = ()
    nullable: bool = False
    what: str = ""  # instead of listing many options

    @property
    def allowed(self) -> str:
        return self.what or "one of " + ", ".join(shown(o) for o in self.options)

    def convert(self, value: object) -> object:
        if isinstance(value, bool) or value not in self.options:
            raise Refused
        return value


@dataclass(frozen=True)
class Text(Rule):
    """A non-empty string (numbers are taken as their text: an area may be called ``1``)."""

    nullable: bool = False
    what: str = "a non-empty name"

    @property
    def allowed(self) -> str:
        return self.what

    def convert(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str | numbers.Real) or not str(value).strip():
            raise Refused
        return str(value)


@dataclass(frozen=True)
class IsoDate(Rule):
    """An ISO date (``2020-01-31``) or date and time (``2020-01-31T08:00``)."""

    nullable: bool = True

    @property
    def allowed(self) -> str:
        return "an ISO date such as 2020-01-31"

    def convert(self, value: object) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day)
        # Only the extended form: 20200131 would pass fromisoformat but is more likely a typo.
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ].*)?", value.strip()):
            raise Refused
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Refused from None


@dataclass(frozen=True)
class ListOf(Rule):
    """A list whose every item passes ``item``, with at least ``min_length`` items."""

    item: Rule = field(default_factory=Number)
    min_length: int = 1
    increasing: bool = False
    what: str = ""
    nullable: bool = False

    @property
    def allowed(self) -> str:
        if self.what:
            return self.what
        size = "a non-empty list" if self.min_length == 1 else f"a list of at least {self.min_length}"
        size = "a list" if self.min_length == 0 else size
        order = " increasing" if self.increasing else ""
        item = self.item.allowed
        return f"{size} of{order} values, each {item}"

    def convert(self, value: object) -> list:
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if not isinstance(value, list | tuple) or len(value) < self.min_length:
            raise Refused
        items = [self.item.convert(item) for item in value]  # Refused by any item refuses the list
        if self.increasing and any(b <= a for a, b in zip(items, items[1:], strict=False)):
            raise Refused
        return items


@dataclass(frozen=True)
class MappingOf(Rule):
    """A mapping (``{name: value}``); each value passes ``value`` when given."""

    value: Rule | None = None
    nullable: bool = False
    what: str = ""

    @property
    def allowed(self) -> str:
        if self.what:
            return self.what
        return "a mapping {key: value}" + (f" with each value {self.value.allowed}" if self.value else "")

    def convert(self, value: object) -> dict:
        if isinstance(value, DictConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if not isinstance(value, dict):
            raise Refused
        return value

    def apply(self, value: object, key: str) -> dict | None:
        mapping = super().apply(value, key)
        if mapping is not None and self.value is not None:
            for name, item in mapping.items():  # the message names the entry, not the whole mapping
                self.value.apply(item, f"{key}.{name}")
        return mapping


@dataclass(frozen=True)
class ExistingPath(Rule):
    """A path to an existing file (or folder), relative to the directory the command runs in.

    The message says which of the two was found instead, and where it looked.
    """

    kind: str = "file"  # "file" or "folder"
    nullable: bool = False

    @property
    def allowed(self) -> str:
        return f"an existing {self.kind}"

    def convert(self, value: object) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise Refused
        return Path(value).expanduser()

    def apply(self, value: object, key: str) -> Path | None:
        path = super().apply(value, key)
        if path is None:
            return None
        where = path.resolve()
        if not path.exists():
            raise ConfigError(f"{key}={shown(value)}: no such {self.kind} (looked for {where})")
        if self.kind == "file" and path.is_dir():
            raise ConfigError(f"{key}={shown(value)}: is a folder; give a file inside it ({where})")
        if self.kind == "folder" and not path.is_dir():
            raise ConfigError(f"{key}={shown(value)}: is a file; give a folder ({where})")
        return path


def check_all(
    cfg: DictConfig,
    rules: Mapping[str, Rule],
    hints: Mapping[str, str] | None = None,
    optional: bool = False,
) -> dict:
    """Check every ``key: rule`` of ``rules`` in order; return the converted values by key.

    With ``optional``, keys that are not in the config at all are skipped (settings that only some
    config groups have).
    """
    hints = hints or {}
    values = {}
    for key, rule in rules.items():
        value = lookup(cfg, key, hints.get(key))
        if value is ABSENT and optional:
            continue
        values[key] = rule.apply(value, key)
    return values


def check_distinct(cfg: DictConfig, key: str) -> None:
    """Refuse a mapping (e.g. ``data.columns``) that names one column for two roles."""
    mapping = lookup(cfg, key, default=None)
    if not isinstance(mapping, DictConfig | Mapping):
        return
    seen: dict[str, str] = {}
    for name, column in mapping.items():
        if column is None:
            continue
        if str(column) in seen:
            raise ConfigError(
                f"{key}.{name}={shown(column)}: must name a column of its own; "
                f"{key}.{seen[str(column)]} names it too"
            )
        seen[str(column)] = str(name)


def check_tracking(cfg: DictConfig, key: str = "tracking") -> None:
    """The ``tracking`` group: a server ``uri`` or a ``store_dir`` folder (which may not exist yet)."""
    server = Text(nullable=True, what="a tracking server address, e.g. http://host:5000")
    uri = server.check(cfg, f"{key}.uri")
    if uri:
        from mlops.tracking import check_uri  # here: it imports MLflow, which most checks never need

        check_uri(uri, f"{key}.uri")
    Text(nullable=True, what="an artifact location").check(cfg, f"{key}.artifact_root", default=None)
    if uri:
        return
    store = Text(nullable=True, what="a folder for the MLflow store, e.g. mlruns").check(
        cfg, f"{key}.store_dir", default=None
    )
    if store is None:
        raise ConfigError(f"{key} needs either `uri` or `store_dir`; set {key}.store_dir=mlruns")
    path = Path(store).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key}.store_dir={shown(store)}: is a file; give a folder for the MLflow store")
    # A parent that is a file would fail at mkdir with an OSError traceback.
    for parent in path.resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"{key}.store_dir={shown(store)}: {parent} is a file; give a folder for the MLflow store"
                )
            break


def check_read_options(cfg: DictConfig, key: str) -> None:
    """Types of a table reader's ``read`` block (its own checks then judge the values)."""
    optional_text = Text(nullable=True, what="a string")
    rules = {
        key: MappingOf(nullable=True, what="a mapping of reader options, e.g. {sep: ';'}"),
        f"{key}.sep": Text(what="a separator such as , or ;"),
        f"{key}.decimal": Text(what="a decimal mark such as . or ,"),
        f"{key}.encoding": Text(what="an encoding such as utf-8 or latin-1"),
        f"{key}.thousands": optional_text,
        f"{key}.date_format": Text(nullable=True, what="a strftime format such as %d/%m/%Y"),
        f"{key}.dtypes": MappingOf(Text(), what="a mapping {column: str|int|float|category}"),
    }
    check_all(cfg, rules, optional=True)


def sequence_of_items(value: object) -> Sequence:
    """A ListConfig or list as a plain list (for checks that walk members)."""
    if isinstance(value, ListConfig):
        return list(value)
    return value if isinstance(value, list | tuple) else []
