"""Hard rules on free text: keywords and regular expressions beside exact values.

A ``calls.never_remote`` value is matched exactly (regardless of case and spacing) unless it starts
with a prefix:

- ``word:`` a keyword or phrase found as whole words anywhere in the text, any case, any spacing:
  ``word:slurred speech`` matches "Slurred  speech since noon" but not "slurredspeech";
- ``re:`` a regular expression searched anywhere in the text, case-insensitive:
  ``re:weakness|dysarthria|slurr`` matches "left arm WEAKNESS" and "slurring words".

So a typed complaint can carry the stroke signs that exact labels cannot:
``'calls.never_remote={chief_complaint:["re:weakness|dysarthria|slurred|facial droop"]}'``. As with
exact values, a call with the column missing matches (an unknown complaint could be a stroke).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from disposition.features import level_text
from disposition.safety import HardRule, rules_from_mapping
from mlops.errors import ConfigError

PREFIXES = ("re:", "word:")


def is_pattern(value: str) -> bool:
    return str(value).startswith(PREFIXES)


def compile_value(value: str, column: str) -> re.Pattern:
    """The regular expression a ``re:`` or ``word:`` value stands for (case-insensitive)."""
    text = str(value)
    if text.startswith("word:"):
        words = text.removeprefix("word:").split()
        if not words:
            raise ConfigError(f"calls.never_remote.{column}: {value!r} has no word after 'word:'")
        return re.compile(r"\b" + r"\s+".join(map(re.escape, words)) + r"\b", re.IGNORECASE)
    pattern = text.removeprefix("re:")
    if not pattern:
        raise ConfigError(f"calls.never_remote.{column}: {value!r} has no pattern after 're:'")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise ConfigError(
            f"calls.never_remote.{column}: {value!r} is not a regular expression ({error}); quote it as "
            "'calls.never_remote={column:[\"re:weakness|slurred\"]}'"
        ) from error


def _normal(text: str) -> str:
    return " ".join(str(text).split()).casefold()


@dataclass(frozen=True)
class PatternRule:
    """Calls whose ``column`` equals one of the exact ``values`` or matches one of its patterns.

    ``values`` keeps the configured spelling (prefixes included), so the rule is saved and loaded
    with the model like any other.
    """

    column: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        for value in self.values:
            if is_pattern(value):
                compile_value(value, self.column)  # a bad pattern is refused when the rule is made

    def value_hits(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """For each configured value, which calls it matches (missing values excluded)."""
        codes, uniques = pd.factorize(frame[self.column], use_na_sentinel=True)
        texts = [level_text(u) for u in uniques]
        hits = {}
        for value in self.values:
            if is_pattern(value):
                pattern = compile_value(value, self.column)
                level_hit = [bool(pattern.search(t)) for t in texts]
            else:
                level_hit = [_normal(t) == _normal(value) for t in texts]
            hits[value] = np.array([*level_hit, False])[codes]
        return hits

    def matches(self, frame: pd.DataFrame) -> np.ndarray:
        hit = frame[self.column].isna().to_numpy()  # an unknown value could be the one the rule is for
        for value_hit in self.value_hits(frame).values():
            hit = hit | value_hit
        return hit

    def describe(self) -> str:
        exact = [v for v in self.values if not is_pattern(v)]
        parts = [f"{self.column} in {{{', '.join(exact)}}}"] if exact else []
        parts += [
            f"{self.column} contains the words '{v.removeprefix('word:')}'"
            if v.startswith("word:")
            else f"{self.column} matches /{v.removeprefix('re:')}/ (any case)"
            for v in self.values
            if is_pattern(v)
        ]
        return " or ".join(parts)


def build_rules(never_remote: Mapping[str, Sequence] | None) -> list[HardRule | PatternRule]:
    """Rules from ``calls.never_remote``: exact-value rules, or pattern rules where a value has a prefix."""
    rules = []
    for rule in rules_from_mapping(never_remote):
        rules.append(PatternRule(rule.column, rule.values) if any(map(is_pattern, rule.values)) else rule)
    return rules


def rule_from_state(column: str, values: Sequence[str]) -> HardRule | PatternRule:
    """A saved rule (``{column, values}``) as the object that matches it."""
    values = tuple(str(v) for v in values)
    return PatternRule(column, values) if any(map(is_pattern, values)) else HardRule(column, values)


def unmatched_values(rule: HardRule | PatternRule, frame: pd.DataFrame) -> list[str]:
    """The rule's values or patterns that match no call of ``frame``."""
    as_patterns = PatternRule(rule.column, tuple(rule.values))  # same matching for exact values
    return [value for value, hit in as_patterns.value_hits(frame).items() if not hit.any()]
