"""Call records in, a validated modelling table out: target, features, dates, hard-rule columns.

Works for the synthetic calls and for anyone's own CSV or Parquet file. The target is a column or
an expression over columns (e.g. ``closed_remotely == 1 and adverse_outcome == 0``) whose value 1
means "was (or would have been) safely closed remotely". Every mistake in the file or the config
is one :class:`~mlops.errors.DataValidationError` or :class:`~mlops.errors.ConfigError` saying
what to change. Call dates are ISO unless ``calls.read.date_format`` gives their format, and the
plausibility checks (``calls.checks``) refuse impossible ages, dates before 1900 or in the future,
and infinite numbers, naming the column, the value and the file line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from disposition.columns import (
    BINARY,
    CONSTANT,
    NUMERIC,
    REFUSED_KINDS,
    by_level,
    inferred_role,
    leakage_warnings,
    parse_numbers,
    profile_columns,
    refuse_unusable,
    render_text,
)
from disposition.features import TIME_FEATURES
from disposition.safety import HardRule
from disposition.scorer import FeatureSpec
from disposition.text_rules import PatternRule, build_rules, unmatched_values
from mlops.errors import ConfigError, DataValidationError
from mlops.tables import (
    ReadOptions,
    check_date_range,
    file_lines,
    near_misses,
    parse_dates,
    separator_hint,
    shown,
)

TARGET = "_target"
SPLITS = ("temporal", "random", "group")


@dataclass(frozen=True)
class CallSpec:
    """What the ``calls`` config group says about a file of call records."""

    name: str
    date_column: str
    target_column: str | None = None
    target_expression: str | None = None
    categorical: list[str] | None = None
    numeric: list[str] | None = None
    time_features: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    filter: str | None = None
    oracle_column: str | None = None
    never_remote: Mapping[str, Sequence] = field(default_factory=dict)
    subgroups: Mapping[str, str | None] = field(default_factory=dict)
    date_format: str | None = None
    age_column: str | None = None
    max_age: float = 120.0
    earliest_date: str = "1900-01-01"
    allow_unmatched_rules: bool = False
    max_duplicate_share: float | None = 0.001
    split: str = "temporal"
    split_group: str | None = None
    # Columns refused as features by their look (identifier, free text) that the user keeps knowingly.
    allow_columns: list[str] = field(default_factory=list)
    decimal: str = "."  # the file's decimal mark (calls.read.decimal), for numbers read as text

    @classmethod
    def from_config(cls, calls: Mapping) -> CallSpec:
        """Build from a resolved ``calls`` config (a plain dict)."""
        target = calls.get("target") or {}
        features = calls.get("features") or {}
        checks = dict(calls.get("checks") or {})
        known = {"age_column", "max_age", "earliest_date", "allow_unmatched_rules", "max_duplicate_share"}
        unknown = sorted(set(checks) - known)
        if unknown:
            raise ConfigError(f"calls.checks: unknown key(s) {unknown}; it takes {sorted(known)}")
        date_column = str(calls.get("date_column") or "")
        read = ReadOptions.from_config(calls.get("read"), "calls.read")
        spec = cls(
            name=str(calls.get("name", "calls")),
            date_column=date_column,
            target_column=target.get("column"),
            target_expression=target.get("expression"),
            categorical=_optional_list(features.get("categorical")),
            numeric=_optional_list(features.get("numeric")),
            # Without a date column (calls.split=random|group) there is no hour or weekday to derive.
            time_features=list(features.get("time") or []) if date_column else [],
            exclude=list(calls.get("exclude") or []),
            filter=calls.get("filter"),
            oracle_column=calls.get("oracle_column"),
            never_remote=dict(calls.get("never_remote") or {}),
            subgroups=dict(calls.get("subgroups") or {}),
            date_format=read.date_format,
            decimal=read.decimal,
            allow_columns=[str(c) for c in (calls.get("allow_columns") or [])],
            age_column=checks.get("age_column"),
            max_age=_number(checks.get("max_age", 120), "calls.checks.max_age"),
            earliest_date=str(checks.get("earliest_date") or "1900-01-01"),
            allow_unmatched_rules=bool(checks.get("allow_unmatched_rules", False)),
            max_duplicate_share=(
                None
                if checks.get("max_duplicate_share", 0.001) is None
                else _number(checks.get("max_duplicate_share", 0.001), "calls.checks.max_duplicate_share")
            ),
            split=str(calls.get("split") or "temporal"),
            split_group=calls.get("split_group"),
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        build_rules(self.never_remote)  # a pattern that is no regular expression: refused now
        if self.split not in SPLITS:
            raise ConfigError(
                f"calls.split={self.split!r} is not a split; use temporal (by calls.date_column), random "
                "(stratified by the outcome) or group (whole groups of calls.split_group per window)"
            )
        if self.split == "temporal" and not self.date_column:
            raise ConfigError(
                "calls.date_column is required with calls.split=temporal (the call date/time that orders "
                "the windows); for a file without dates set calls.split=random, or calls.split=group "
                "with calls.split_group=<column>"
            )
        if self.split == "group" and not self.split_group:
            raise ConfigError(
                "calls.split=group needs calls.split_group=<column> (e.g. hospital): no group's calls are "
                "in two windows"
            )
        if self.split != "group" and self.split_group:
            raise ConfigError(
                f"calls.split_group={self.split_group!r} is only used with calls.split=group "
                f"(calls.split={self.split})"
            )
        if bool(self.target_column) == bool(self.target_expression):
            raise ConfigError(
                "set exactly one of calls.target.column (a 0/1 column) or calls.target.expression "
                "(e.g. 'closed_remotely == 1 and adverse_outcome == 0')"
            )
        unknown = set(self.time_features) - set(TIME_FEATURES)
        if unknown:
            raise ConfigError(
                f"calls.features.time has unknown name(s) {sorted(unknown)}; use {list(TIME_FEATURES)}"
            )
        share = self.max_duplicate_share
        if share is not None and not 0 <= share < 1:
            raise ConfigError(
                f"calls.checks.max_duplicate_share must be a share of calls in [0, 1), or null to switch the "
                f"check off; got {share:g}"
            )
        if not self.max_age > 0:
            raise ConfigError(
                f"calls.checks.max_age must be a positive number of years, got {self.max_age:g}"
            )
        try:
            pd.Timestamp(self.earliest_date)
        except ValueError as error:
            raise ConfigError(
                f"calls.checks.earliest_date={self.earliest_date!r} is not a date; write YYYY-MM-DD"
            ) from error


def _number(value, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key} must be a number, got {value!r}") from error
    if not np.isfinite(number):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    return number


def _optional_list(value) -> list[str] | None:
    return None if value is None else [str(v) for v in value]


@dataclass
class PreparedCalls:
    """A validated modelling table sorted by call time.

    Attributes
    ----------
    frame : DataFrame
        The columns the model, the rules, the report and the oracle need, plus ``_target``.
    features : FeatureSpec
    rules : list of HardRule or PatternRule
    notes : list of str
        Decisions taken on the user's behalf (e.g. a constant column left out), for the run log.
    """

    frame: pd.DataFrame
    features: FeatureSpec
    rules: list[HardRule | PatternRule]
    spec: CallSpec
    notes: list[str] = field(default_factory=list)
    # One row per column of the file: role, inferred type, levels, missing share (disposition.columns).
    columns: pd.DataFrame | None = None
    # Loud warnings for the console and the top of the report (a feature that leaks the outcome).
    warnings: list[str] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        return self.frame[TARGET].to_numpy()

    @property
    def dates(self) -> pd.Series | None:
        """Call times, or None for a file without a date column (calls.split=random|group)."""
        return self.frame[self.spec.date_column] if self.spec.date_column else None

    @property
    def groups(self) -> np.ndarray | None:
        """Each call's group for calls.split=group (missing values one group), else None."""
        column = self.spec.split_group
        if not column:
            return None
        return np.asarray(
            self.frame[column].astype(object).where(self.frame[column].notna(), "(missing)").astype(str)
        )

    @property
    def oracle(self) -> np.ndarray | None:
        column = self.spec.oracle_column
        return None if column is None else self.frame[column].to_numpy(dtype=float)


def prepare_calls(
    raw: pd.DataFrame, spec: CallSpec, source: str = "calls", show: Callable[[str], None] | None = None
) -> PreparedCalls:
    """Validate ``raw`` call records against ``spec`` and build the modelling table.

    ``show`` (e.g. ``print``) receives the column summary before any column is refused, and the
    leakage warnings.
    """
    if not raw.index.is_unique:  # rows are named by index (= file line - 2): make them distinct
        raw = raw.reset_index(drop=True)
    _check_duplicates(raw, spec, source)
    frame = _apply_filter(raw, spec, source)
    target_columns = _target_columns(frame, spec)
    y = _target(frame, spec, source)
    dates = _dates(frame, spec, source) if spec.date_column else None
    _check_split_group(frame, spec, source)
    _check_ages(frame, spec, source)
    notes: list[str] = []
    rules = build_rules(spec.never_remote)
    for rule in rules:  # a setting naming no column is a config mistake: before the column summary
        if rule.column not in frame.columns:
            raise ConfigError(
                f"hard rule column {rule.column!r} (calls.never_remote) is not in {source}; set "
                f"'calls.never_remote={{column:[values]}}' over its columns {list(frame.columns)[:12]} "
                "(once: a second calls.never_remote={...} is merged into the first, not replacing it), "
                "or add calls.never_remote=null for no hard rules (not advised)"
            )
    features, profile = _features(frame, spec, y, target_columns, notes, source, show)
    warnings = leakage_warnings(profile)
    if not spec.date_column:
        notes.append(
            f"no date column (calls.split={spec.split}): no time features (hour, day of week) and no "
            "time-of-day subgroups"
        )
    for rule in rules:
        _check_rule_matches(raw, rule, spec, notes, source, warnings)
    for warning in warnings:
        (show or (lambda _: None))(f"WARNING: {warning}")
    if spec.oracle_column and spec.oracle_column not in frame.columns:
        raise DataValidationError(
            f"{source}: oracle column {spec.oracle_column!r} not found; set calls.oracle_column=null"
        )
    keep = [*features.categorical, *features.numeric, *(r.column for r in rules)]
    absent = {
        name: column for name, column in spec.subgroups.items() if column and column not in frame.columns
    }
    if absent:
        name, column = next(iter(absent.items()))
        raise ConfigError(
            f"calls.subgroups.{name}={column!r} is not a column of {source}; it has "
            f"{list(frame.columns)[:12]} (calls.subgroups.{name}=null reports no {name} subgroups)"
        )
    keep += [c for c in spec.subgroups.values() if c]
    keep += [spec.oracle_column] if spec.oracle_column else []
    keep += [spec.split_group] if spec.split_group else []
    table = frame[list(dict.fromkeys(c for c in keep if c != spec.date_column))].copy()
    if spec.date_column:
        table[spec.date_column] = dates
    for column in features.numeric:  # numbers the reader left as text (decimal commas beside junk)
        if not (pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(table[column])):
            table[column] = parse_numbers(table[column], spec.decimal)
    table[TARGET] = y
    if spec.date_column:
        table = table.sort_values(spec.date_column, kind="stable", ignore_index=True)
    else:
        table = table.reset_index(drop=True)  # file order; the split is random or by group
    return PreparedCalls(table, features, rules, spec, notes, profile, warnings)


def _check_duplicates(raw: pd.DataFrame, spec: CallSpec, source: str) -> None:
    """Refuse a file in which many rows are exact copies of others (exported or appended twice).

    Two real calls agreeing in every column, the call time included, are rare; above
    ``calls.checks.max_duplicate_share`` of the calls, copies would be counted twice in training and
    calibration (and in the under-triage bound).
    """
    if spec.max_duplicate_share is None:
        return
    try:
        hashes = pd.util.hash_pandas_object(raw, index=False)
    except TypeError:  # unhashable cells (lists in a Parquet column): nothing sensible to compare
        return
    copies = raw.index[hashes.duplicated(keep="first").to_numpy()]
    if len(copies) <= spec.max_duplicate_share * len(raw):
        return
    first = raw.index[(hashes == hashes[copies[0]]).to_numpy()][0]
    raise DataValidationError(
        f"{source}: {len(copies)} call(s) ({len(copies) / len(raw):.1%}) are duplicate rows, exact copies of "
        f"another row, e.g. line {int(copies[0]) + 2} repeats line {int(first) + 2}; a file exported or "
        "appended twice counts calls twice. Remove the copies (or allow up to a share with "
        "calls.checks.max_duplicate_share, null to switch this off)"
    )


def _check_rule_matches(
    raw: pd.DataFrame, rule, spec: CallSpec, notes: list[str], source: str, warnings: list[str]
) -> None:
    """A hard rule none of whose values occurs in the file is probably spelled differently from it.

    ``Cat 1`` in the file against ``C1`` in the rule would let every Category 1 call through, so it
    is refused; a hub that truly never sees those calls keeps the rule (for requests that do) with
    ``calls.checks.allow_unmatched_rules=true``. A rule some of whose values or patterns match no
    call is kept and each such value is reported (a warning: a misspelt one protects nobody).
    Checked before ``calls.filter``, which may remove the matching calls on purpose.
    """
    present = raw[rule.column].dropna()
    if present.empty:
        return
    unmatched = unmatched_values(rule, raw.loc[present.index])
    if len(unmatched) < len(rule.values):
        if unmatched:
            warnings.append(
                f"hard rule calls.never_remote.{rule.column}: {', '.join(map(repr, unmatched))} "
                f"match{'es' if len(unmatched) == 1 else ''} no call in {source}; check the spelling "
                "against the file's values (the rule's other values do match)"
            )
        return
    seen = sorted(map(str, present.unique()))
    described = f"calls.never_remote.{rule.column}={list(rule.values)} matches no call"
    if spec.allow_unmatched_rules:
        notes.append(f"hard rule {described} in {source} (kept: calls.checks.allow_unmatched_rules)")
        return
    raise DataValidationError(
        f"{source}: hard rule {described}: column {rule.column!r} holds {seen[:10]}"
        f"{' ...' if len(seen) > 10 else ''}. Write the rule's values as the file spells them (or the rule "
        "lets those calls through); if the file truly has none, keep the rule with "
        "calls.checks.allow_unmatched_rules=true"
    )


def _apply_filter(raw: pd.DataFrame, spec: CallSpec, source: str) -> pd.DataFrame:
    if not spec.filter:
        return raw
    try:
        kept = raw.query(spec.filter)
    except Exception as error:  # noqa: BLE001 - pandas raises many types for a bad expression
        raise ConfigError(f"calls.filter {spec.filter!r} cannot be evaluated on {source}: {error}") from error
    if kept.empty:
        raise DataValidationError(f"{source}: calls.filter {spec.filter!r} leaves no calls")
    return kept


def _target_columns(frame: pd.DataFrame, spec: CallSpec) -> set[str]:
    """Columns the target is computed from: using any of them as a feature would leak the answer."""
    if spec.target_column:
        return {spec.target_column}
    names = set()
    for quoted, bare in re.findall(r"`([^`]+)`|([A-Za-z_]\w*)", spec.target_expression):
        names.add(quoted or bare)
    return names & {str(c) for c in frame.columns}


def _target(frame: pd.DataFrame, spec: CallSpec, source: str) -> np.ndarray:
    if spec.target_column:
        if spec.target_column not in frame.columns:
            columns = list(frame.columns)
            raise DataValidationError(
                f"{source}: target column {spec.target_column!r} not found; the file has {columns}."
                f"{near_misses([spec.target_column], columns)}{separator_hint(frame, 'calls.read')}"
            )
        values = frame[spec.target_column]
        described = f"target column {spec.target_column!r}"
    else:
        try:
            values = frame.eval(spec.target_expression)
        except Exception as error:  # noqa: BLE001 - undefined names, syntax errors, type errors
            raise ConfigError(
                f"calls.target.expression {spec.target_expression!r} cannot be evaluated on {source}: {error}"
            ) from error
        if not isinstance(values, pd.Series) or len(values) != len(frame):
            raise ConfigError(
                f"calls.target.expression {spec.target_expression!r} must give one value per call"
            )
        described = f"target expression {spec.target_expression!r}"
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("Float64")  # nullable: a missing outcome stays missing
    numeric = pd.to_numeric(values, errors="coerce").astype("float64")
    missing = numeric.index[numeric.isna()]
    if len(missing):
        raise DataValidationError(
            f"{source}: {described} is missing or not 0/1 for {len(missing)} call(s), e.g. "
            f"{shown(values[missing[0]])} at {file_lines(missing)}; drop calls with unknown outcome with "
            'calls.filter (e.g. "adverse_outcome == adverse_outcome")'
        )
    bad = numeric.index[~numeric.isin([0, 1])]
    if len(bad):
        raise DataValidationError(
            f"{source}: {described} must be 0/1 (1 = safe to close remotely); found {shown(numeric[bad[0]])} "
            f"at {file_lines(bad)}"
        )
    if numeric.nunique() < 2:
        raise DataValidationError(
            f"{source}: {described} has one class only (all {int(numeric.iloc[0])}); a model needs "
            "calls that were and calls that were not safe to close remotely"
        )
    return numeric.to_numpy(dtype=np.int8)


def _dates(frame: pd.DataFrame, spec: CallSpec, source: str) -> pd.Series:
    column = spec.date_column
    if column not in frame.columns:
        raise DataValidationError(
            f"{source}: date column {column!r} not found; set calls.date_column to one of "
            f"{list(frame.columns)}.{near_misses([column], frame.columns)}"
            f"{separator_hint(frame, 'calls.read')}"
        )
    what = f"date column {column!r}"
    dates = parse_dates(frame[column], spec.date_format, what=what, source=source, setting="calls.read")
    bad = frame.index[dates.isna()]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) of {what} are missing (not dates) at {file_lines(bad)}; the "
            "temporal split needs a date for every call (drop those calls with calls.filter)"
        )
    check_date_range(
        dates,
        frame[column],
        what=what,
        source=source,
        earliest=pd.Timestamp(spec.earliest_date),
        earliest_key="calls.checks.earliest_date",
        fix="fix the dates (or their format, calls.read.date_format) or drop those calls with calls.filter",
    )
    return dates


def _check_split_group(frame: pd.DataFrame, spec: CallSpec, source: str) -> None:
    column = spec.split_group
    if column and column not in frame.columns:
        raise DataValidationError(
            f"{source}: calls.split_group={column!r} is not a column; it has {list(frame.columns)[:12]}."
            f"{near_misses([column], frame.columns)}"
        )


def _check_ages(frame: pd.DataFrame, spec: CallSpec, source: str) -> None:
    """Refuse ages below 0 or above ``calls.checks.max_age`` (a typo or a code such as 999)."""
    column = spec.age_column or spec.subgroups.get("age") or ("age" if "age" in frame.columns else None)
    if column is None:
        return
    if column not in frame.columns:
        raise ConfigError(
            f"age column {column!r} (calls.checks.age_column / calls.subgroups.age) is not in {source}; "
            f"it has {list(frame.columns)[:12]}"
        )
    ages = pd.to_numeric(frame[column], errors="coerce")
    if ages.notna().sum() == 0:
        return  # age bands as text ('18-64'): nothing to check as numbers
    ages = ages.astype(float)
    bad = frame.index[(ages < 0) | (ages > spec.max_age) | ages.isin([np.inf, -np.inf])]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} call(s) have an impossible age in column {column!r}, e.g. "
            f"{shown(frame.loc[bad[0], column])} at {file_lines(bad)}; ages must be 0-{spec.max_age:g} "
            f"(calls.checks.max_age). Fix them, or declare a code for unknown age (e.g. 999) as missing "
            "with \"calls.read.na_values=['999']\""
        )


def _features(
    frame: pd.DataFrame,
    spec: CallSpec,
    y: np.ndarray,
    target_columns: set[str],
    notes: list[str],
    source: str,
    show: Callable[[str], None] | None = None,
) -> tuple[FeatureSpec, pd.DataFrame]:
    """The features, and the column summary (printed through ``show`` before anything is refused)."""
    forbidden = {
        **{c: "is the target or used to compute it" for c in target_columns},
        **{c: "is listed in calls.exclude (leaks the outcome)" for c in spec.exclude},
    }
    if spec.date_column:
        forbidden[spec.date_column] = "is the date column (use calls.features.time for hour and weekday)"
    if spec.split_group:
        # Whole groups are held out: their level would be unseen in the test window.
        forbidden[spec.split_group] = "is the split group (calls.split_group): the test groups are unseen"
    if spec.oracle_column:
        forbidden[spec.oracle_column] = "is the oracle (true probability)"
    unknown = [c for c in spec.allow_columns if c not in frame.columns]
    if unknown:
        raise ConfigError(
            f"calls.allow_columns names {unknown}, not column(s) of {source}; it has "
            f"{list(frame.columns)[:12]}{near_misses(unknown, frame.columns)}"
        )
    explicit = spec.categorical is not None or spec.numeric is not None
    listed = set(spec.categorical or []) | set(spec.numeric or [])
    roles = _roles(spec, forbidden)

    def role_of(column: str, kind: str) -> str:
        if column in listed or (column not in forbidden and not explicit):
            if explicit:
                return "feature"
            allowed = column in spec.allow_columns
            if roles.get(column) == "hard rule" and kind in REFUSED_KINDS and not allowed:
                return "hard rule only"  # a typed complaint read by a pattern rule, not a feature
            return inferred_role(kind, allowed)
        return roles.get(column, "not used")

    profile = profile_columns(frame, y, role_of, spec.decimal)
    if show is not None:
        show(f"Columns of {source} ({len(frame):,} calls):\n{render_text(profile)}")
    if explicit:
        categorical, numeric = list(spec.categorical or []), list(spec.numeric or [])
    else:
        refuse_unusable(profile, frame, source, spec.decimal)
        categorical, numeric = _infer_features(profile, notes)
    named = categorical + numeric
    missing = [c for c in named if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{source}: feature column(s) {missing} not found; the file has {list(frame.columns)}"
        )
    for column in named:
        if column in forbidden:
            raise ConfigError(f"feature {column!r} {forbidden[column]}: remove it from calls.features")
    if len(set(named)) < len(named):
        raise ConfigError(f"a feature is listed twice in calls.features: {named}")
    if not named and not spec.time_features:
        raise ConfigError("no features: list some in calls.features.categorical / calls.features.numeric")
    for column in numeric:
        _check_numeric(frame[column], column, source, spec.decimal)
    for column in named:
        _check_informative(frame[column], column, y, source)
    return FeatureSpec(categorical, numeric, spec.date_column or None, list(spec.time_features)), profile


def _roles(spec: CallSpec, forbidden: Mapping[str, str]) -> dict[str, str]:
    """What each column named by a setting is for, as the column summary shows it."""
    roles = {}
    for rule in build_rules(spec.never_remote):
        roles[rule.column] = "hard rule"
    for group, column in spec.subgroups.items():
        if column:
            roles.setdefault(column, f"subgroup ({group})")
    short = {
        "is the target or used to compute it": "target",
        "is listed in calls.exclude (leaks the outcome)": "excluded",
        "is the oracle (true probability)": "oracle",
    }
    for column, why in forbidden.items():
        roles[column] = short.get(why, "date" if column == spec.date_column else "split group")
    return roles


def _infer_features(profile: pd.DataFrame, notes: list[str]) -> tuple[list, list]:
    """Features from the column summary: categories (text, integer codes, allowed) and numbers."""
    used = profile[profile["role"] == "feature"]
    kinds = dict(zip(used["column"], used["type"], strict=True))
    categorical = [c for c, kind in kinds.items() if kind not in (NUMERIC, BINARY)]
    numeric = [c for c, kind in kinds.items() if kind in (NUMERIC, BINARY)]
    for column in profile.loc[profile["type"] == CONSTANT, "column"]:
        notes.append(f"column {column!r} left out: it has a single value")
    notes.append(f"features inferred: categorical {categorical}, numeric {numeric}")
    return categorical, numeric


def _check_numeric(values: pd.Series, column: str, source: str, decimal: str = ".") -> None:
    if pd.api.types.is_bool_dtype(values):
        return
    if pd.api.types.is_numeric_dtype(values):
        _check_finite(values, values, column, source)
        return
    parsed = parse_numbers(values, decimal)
    bad = values.index[parsed.isna() & values.notna()]
    if len(bad):
        raise DataValidationError(
            f"{source}: numeric feature {column!r} holds non-numbers, e.g. {shown(values[bad[0]])} at "
            f"{file_lines(bad)}; if such values mean 'unknown' declare them missing with "
            f'"calls.read.na_values=[{str(values[bad[0]]).strip()!r}]", otherwise list the column under '
            "calls.features.categorical or fix the values"
        )
    _check_finite(parsed, values, column, source)


def _check_finite(numbers: pd.Series, values: pd.Series, column: str, source: str) -> None:
    infinite = values.index[numbers.astype(float).isin([np.inf, -np.inf])]
    if len(infinite):
        raise DataValidationError(
            f"{source}: numeric feature {column!r} holds infinite values, e.g. "
            f"{shown(values[infinite[0]])} at {file_lines(infinite)}; fix them or leave them empty (missing)"
        )


def _check_informative(values: pd.Series, column: str, y: np.ndarray, source: str) -> None:
    if values.nunique(dropna=True) <= 1:
        raise DataValidationError(
            f"{source}: feature {column!r} is constant (a single value or missing in every call); "
            "it cannot inform the model, remove it from calls.features"
        )
    numbers = (
        by_level(values, lambda v: pd.to_numeric(v, errors="coerce"))
        if not isinstance(values.dtype, pd.CategoricalDtype)
        else None
    )
    if numbers is not None and numbers.notna().all():
        same = np.array_equal(numbers.to_numpy(), y) or np.array_equal(numbers.to_numpy(), 1 - y)
        if same:
            raise DataValidationError(
                f"{source}: feature {column!r} is identical to the target; it leaks the outcome, "
                "add it to calls.exclude"
            )


def temporal_split(
    dates: pd.Series,
    calibration_fraction: float = 0.2,
    test_fraction: float = 0.2,
    calibration_start: str | None = None,
    test_start: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Train on the earliest calls, calibrate and set the threshold on the next, test on the latest.

    Boundaries are explicit dates when given, otherwise quantiles of the call times.

    Returns
    -------
    train, calibration, test : boolean arrays
    bounds : dict
        ``calibration_start`` and ``test_start`` as ISO strings, for the run log and model card.
    """
    _check_fractions(calibration_fraction, test_fraction)
    dates = pd.to_datetime(dates)
    # Quantile boundaries are moved to the start of their day: a day's calls stay in one window.
    cal = pd.Timestamp(
        calibration_start or dates.quantile(1 - calibration_fraction - test_fraction).floor("D")
    )
    test = pd.Timestamp(test_start or dates.quantile(1 - test_fraction).floor("D"))
    if not cal < test:
        raise ConfigError(f"split: calibration start {cal} must be before test start {test}")
    values = dates.to_numpy()
    train = values < np.datetime64(cal)
    calibration = (values >= np.datetime64(cal)) & (values < np.datetime64(test))
    held_out = values >= np.datetime64(test)
    return train, calibration, held_out, {"calibration_start": _iso(cal), "test_start": _iso(test)}


def _iso(moment: pd.Timestamp) -> str:
    return moment.strftime("%Y-%m-%d") if moment == moment.normalize() else moment.isoformat()


def check_windows(y: np.ndarray, windows: Mapping[str, np.ndarray], minimum: int = 50) -> None:
    """Each window needs enough calls and both outcomes, or its figures mean nothing."""
    for name, mask in windows.items():
        n = int(mask.sum())
        classes = np.unique(y[mask])
        if n < minimum or len(classes) < 2:
            raise DataValidationError(
                f"the {name} window has {n} call(s) with outcome(s) {classes.tolist()}; it needs at "
                f"least {minimum} calls of both outcomes (move split.calibration_start / split.test_start "
                "or add data)"
            )


def random_split(
    y: np.ndarray, calibration_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Stratified random windows: each outcome is shared out in the same proportions (seeded).

    For files without dates. It cannot show drift over time: every window comes from the same period.
    """
    _check_fractions(calibration_fraction, test_fraction)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    window = np.zeros(len(y), dtype=np.int8)  # 0 training, 1 calibration, 2 test
    for value in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == value))
        n_test = int(round(test_fraction * len(rows)))
        n_cal = int(round(calibration_fraction * len(rows)))
        window[rows[:n_test]] = 2
        window[rows[n_test : n_test + n_cal]] = 1
    return window == 0, window == 1, window == 2, {"split": "random"}


def group_split(
    groups: np.ndarray, calibration_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Whole groups (e.g. hospitals) per window, drawn in a seeded random order, so no group is in two.

    Groups are taken in that order until each held-out window has about its fraction of calls.
    """
    _check_fractions(calibration_fraction, test_fraction)
    groups = np.asarray(groups)
    levels, codes, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(levels) < 3:
        raise DataValidationError(
            f"calls.split=group needs at least 3 groups (one per window); the column has {len(levels)}: "
            f"{levels.tolist()[:5]}; use calls.split=random or a column with more groups"
        )
    order = np.random.default_rng(seed).permutation(len(levels))
    total = counts.sum()
    window_of = np.zeros(len(levels), dtype=np.int8)  # 0 training, 1 calibration, 2 test
    done, i, n = 0, 0, len(order)
    while i < n - 2 and (i == 0 or done < test_fraction * total):
        window_of[order[i]] = 2
        done, i = done + counts[order[i]], i + 1
    first = i
    while i < n - 1 and (i == first or done < (test_fraction + calibration_fraction) * total):
        window_of[order[i]] = 1
        done, i = done + counts[order[i]], i + 1
    window = window_of[codes]
    names = {w: sorted(str(v) for v in levels[window_of == w]) for w in (0, 1, 2)}
    return (
        window == 0,
        window == 1,
        window == 2,
        {
            "split": "group",
            "groups": f"training {len(names[0])}, calibration {len(names[1])}, test {len(names[2])}",
            "test_groups": ", ".join(names[2][:10]) + (" ..." if len(names[2]) > 10 else ""),
        },
    )


def _check_fractions(calibration_fraction: float, test_fraction: float) -> None:
    for name, value in {"calibration_fraction": calibration_fraction, "test_fraction": test_fraction}.items():
        if not 0 < value < 1:
            raise ConfigError(f"split.{name} must be in (0, 1), got {value}")
    if calibration_fraction + test_fraction >= 0.9:
        raise ConfigError(
            "split.calibration_fraction + split.test_fraction must leave at least 10 % to train on"
        )


def split_windows(
    calls: PreparedCalls, split: Mapping, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """The training, calibration and test windows for ``calls.split`` (temporal, random or group)."""
    kind = calls.spec.split
    if kind == "temporal":
        return temporal_split(calls.dates, **split)
    dated = {k: split.get(k) for k in ("calibration_start", "test_start") if split.get(k) is not None}
    if dated:
        key = next(iter(dated))
        raise ConfigError(f"split.{key} is a date: it applies only to calls.split=temporal, not {kind}")
    fractions = (float(split.get("calibration_fraction", 0.2)), float(split.get("test_fraction", 0.2)))
    if kind == "random":
        return random_split(calls.y, *fractions, seed=seed)
    return group_split(calls.groups, *fractions, seed=seed)
