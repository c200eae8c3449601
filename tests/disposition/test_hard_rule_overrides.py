"""`calls.never_remote` on the command line: an override replaces the hard rules, null clears them,
and every spelling the toolkit's messages recommend does what they say."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from omegaconf import OmegaConf

from disposition.config_checks import HINTS, check_config
from disposition.data import CallSpec, prepare_calls
from disposition.safety import HardRule
from disposition.text_rules import PatternRule, rule_from_state, unmatched_values
from mlops.errors import ConfigError
from tests.disposition.conftest import compose_disposition

STANDARD = {
    "category": ["C1"],
    "symptom_group": [
        "cardiac_respiratory_arrest",
        "unconscious",
        "choking",
        "anaphylaxis",
        "major_haemorrhage",
        "major_trauma",
        "stroke_symptoms",
        "chest_pain",
    ],
}


def _rules(overrides: list[str]) -> dict:
    """The hard rules the training job would use, after the config check it runs first."""
    cfg = compose_disposition(overrides)
    check_config(cfg)
    return dict(CallSpec.from_config(OmegaConf.to_container(cfg.calls, resolve=True)).never_remote)


def _own(calls_path) -> list[str]:
    return [
        "calls=csv",
        f"calls.path={calls_path}",
        "calls.date_column=call_time",
        "calls.target.column=safe_remote",
    ]


def test_synthetic_calls_keep_the_standard_rules_unless_overridden(calls_path):
    assert _rules([f"calls.path={calls_path}"]) == STANDARD


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # Replaced, not merged: the symptom-group rules are gone, category holds only C2.
        (["calls.never_remote={category:[C2]}"], {"category": ["C2"]}),
        (["calls.never_remote={area:[north]}"], {"area": ["north"]}),
        (["calls.never_remote=null"], {}),
        (["calls.never_remote={}"], {}),
        # A later null clears even after a first override (a second dict would be merged into it).
        (["calls.never_remote={category:[C2]}", "calls.never_remote=null"], {}),
        # One column of the standard rules changed, the others kept.
        (["calls.standard_never_remote.category=[C1,C2]"], {**STANDARD, "category": ["C1", "C2"]}),
    ],
)
def test_an_override_replaces_or_clears_the_synthetic_rules(calls_path, overrides, expected):
    assert _rules([f"calls.path={calls_path}", *overrides]) == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["calls.never_remote={category:[C1]}"], {"category": ["C1"]}),
        (["calls.never_remote=null"], {}),
        (["calls.never_remote={category:[C1]}", "calls.never_remote=null"], {}),
    ],
)
def test_own_records_rules_are_set_or_cleared(calls_path, overrides, expected):
    assert _rules([*_own(calls_path), *overrides]) == expected


def test_the_spellings_the_messages_recommend_work(calls_path, calls):
    # Required and missing: the hint's example and its "none" spelling.
    with pytest.raises(ConfigError, match="calls.never_remote is required") as missing:
        check_config(compose_disposition(_own(calls_path)))
    assert (
        "calls.never_remote=null" in str(missing.value)
        and "calls.never_remote=null" in HINTS["calls.never_remote"]
    )
    example = re.search(r"'(calls\.never_remote=\{.*?\})'", str(missing.value)).group(1)
    assert _rules([*_own(calls_path), example]) == {"category": ["C1"]}
    assert _rules([*_own(calls_path), "calls.never_remote=null"]) == {}

    # A rule column the file lacks: the message says to add calls.never_remote=null; added, it clears.
    wrong = [*_own(calls_path), "calls.never_remote={chief_complaint:[stroke]}"]
    spec = CallSpec.from_config(OmegaConf.to_container(compose_disposition(wrong).calls, resolve=True))
    with pytest.raises(ConfigError, match="hard rule column 'chief_complaint'") as absent:
        prepare_calls(calls, spec)
    added = re.search(r"add (calls\.never_remote=\S+)", str(absent.value)).group(1)
    assert _rules([*wrong, added]) == {}


# --- rules on free text: keywords and regular expressions -------------------------------------------


def test_keywords_and_patterns_match_free_text_in_any_case():
    frame = pd.DataFrame(
        {
            "complaint": [
                "Left arm WEAKNESS since noon",
                "slurred  speech",
                "slurring words",
                "weak and tired",
                "sore throat",
                None,
                "dysarthria, confused",
            ]
        }
    )
    rule = PatternRule("complaint", ("re:weakness|dysarthria|slurr",))
    assert rule.matches(frame).tolist() == [True, True, True, False, False, True, True]
    words = PatternRule("complaint", ("word:slurred speech", "sore throat"))
    assert words.matches(frame).tolist() == [False, True, False, False, True, True, False]
    assert "matches /weakness|dysarthria|slurr/ (any case)" in rule.describe()
    assert unmatched_values(PatternRule("complaint", ("re:stroke", "re:weakness")), frame) == ["re:stroke"]
    # Saved with the model as {column, values} and loaded as the same rule.
    assert rule_from_state("complaint", ["re:weakness"]) == PatternRule("complaint", ("re:weakness",))
    assert isinstance(rule_from_state("category", ["C1"]), HardRule)
    with pytest.raises(ConfigError, match=r"'re:weak\(' is not a regular expression"):
        PatternRule("complaint", ("re:weak(",))


def test_a_pattern_rule_from_the_command_line(calls_path, calls):
    spelled = "'calls.never_remote={symptom_group:[\"re:stroke|chest\"],category:[C1,C9]}'"
    overrides = [f"calls.path={calls_path}", spelled.strip("'")]
    assert _rules(overrides) == {"symptom_group": ["re:stroke|chest"], "category": ["C1", "C9"]}
    spec = CallSpec.from_config(OmegaConf.to_container(compose_disposition(overrides).calls, resolve=True))
    prepared = prepare_calls(calls.head(3000), spec)
    pattern = next(r for r in prepared.rules if r.column == "symptom_group")
    hit = pattern.matches(prepared.frame)
    groups = set(prepared.frame.loc[hit, "symptom_group"])
    assert groups == {"stroke_symptoms", "chest_pain"}
    # C9 matches no call: kept (C1 does), and reported.
    assert any("calls.never_remote.category: 'C9' matches no call" in w for w in prepared.warnings)
    with pytest.raises(ConfigError, match="not a regular expression"):
        check_config(
            compose_disposition([f"calls.path={calls_path}", 'calls.never_remote={symptom_group:["re:("]}'])
        )
