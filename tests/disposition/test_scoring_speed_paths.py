"""The scorer's fast paths give exactly the answers of the plain computations they replace.

Encoding the logistic model's features one distinct value at a time, labelling subgroup levels once
per distinct (age, sex, category) and computing reasons block by block are only speed-ups: each is
checked here against the plain computation on requests with missing values, unseen levels and
values sent as text.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import disposition.scorer as scorer_module
from disposition.calibration import fit_calibrator
from disposition.features import add_time_features, as_linear_input, encode_by_value
from disposition.model import LinearModel, TreeModel, fit_classifier, make_classifier_pipeline, model_input
from disposition.reasons import ContributionTable, display_values, top_reasons
from disposition.safety import HardRule
from disposition.scorer import FeatureSpec, RemoteClosureScorer
from disposition.withheld import WithheldLevels

CATEGORICAL = ["area", "category", "symptom_group", "sex"]
NUMERIC = ["age", "care_home", "contacts_7d", "contacts_30d", "long_term_conditions", "able_to_walk"]
SPEC = FeatureSpec(CATEGORICAL, NUMERIC, "call_time", ["hour"])


def _messy(calls: pd.DataFrame) -> pd.DataFrame:
    """Calls as users send them: gaps, a level never seen, numbers as text, integer-coded flags."""
    frame = calls[[*CATEGORICAL, *NUMERIC, "call_time"]].copy().astype({"age": object, "area": object})
    frame.loc[frame.index[:5], "age"] = None
    frame.loc[frame.index[5:10], "age"] = "37"  # text a caller sent for a number
    frame.loc[frame.index[10:15], "area"] = "Atlantis"  # unseen level
    frame.loc[frame.index[15:20], "area"] = None
    frame.loc[frame.index[20:25], "contacts_30d"] = np.nan
    return frame


def _linear(calls: pd.DataFrame) -> tuple[LinearModel, pd.DataFrame]:
    frame = add_time_features(calls.head(6000), "call_time", ["hour"])
    pipeline = make_classifier_pipeline(
        LogisticRegression(max_iter=500), CATEGORICAL, SPEC.model_numeric, frame
    )
    X = model_input(pipeline, frame, CATEGORICAL, SPEC.model_numeric)
    pipeline = fit_classifier(pipeline, X, frame["safe_remote"].to_numpy(), {}, len(CATEGORICAL))
    return LinearModel.from_pipeline(pipeline, CATEGORICAL, SPEC.model_numeric, frame), frame


def test_encoding_each_distinct_value_once_gives_the_preprocessors_own_output(calls):
    model, _ = _linear(calls)
    request = add_time_features(_messy(calls.iloc[6000:9000]), "call_time", ["hour"])
    preprocessor = model.pipeline.named_steps["encode"]
    plain = np.asarray(
        preprocessor.transform(as_linear_input(request, CATEGORICAL, SPEC.model_numeric)), dtype=float
    )
    fast = encode_by_value(preprocessor, request, CATEGORICAL, SPEC.model_numeric)
    assert np.array_equal(fast, plain)
    assert np.array_equal(model.raw_score(fast), model.pipeline.named_steps["model"].decision_function(plain))


def test_a_preprocessor_of_another_layout_is_applied_as_it_is(calls):
    frame = calls.head(500)
    dense = ColumnTransformer(
        [
            ("codes", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["area", "sex"]),
            ("age", StandardScaler(), ["age"]),
        ]
    ).fit(as_linear_input(frame, ["area", "sex"], ["age"]))
    expected = np.asarray(dense.transform(as_linear_input(frame, ["area", "sex"], ["age"])), dtype=float)
    assert np.array_equal(encode_by_value(dense, frame, ["area", "sex"], ["age"]), expected)


WITHHELD = WithheldLevels(
    columns={"age": "age", "sex": "sex", "category": "category"},
    age_edges=[0, 18, 65, 85],
    levels={"age_band": ["85+"], "category": ["C1"]},
    thresholds={
        "age_band": {"0-17": 0.95, "18-64": 0.9, "65-84": 0.97, "85+": np.inf},
        "sex": {"F": 0.91, "M": 0.93},
        "category": {"C1": np.inf, "C2": 0.96, "C3": 0.92, "C4": 0.9},
    },
)


def test_thresholds_labelled_once_per_combination_are_each_calls_own(calls):
    scorer = RemoteClosureScorer(None, None, 0.92, [], SPEC, withheld=WITHHELD)
    typed = calls.iloc[:5000].astype({"age": float}).reset_index(drop=True)
    typed.loc[:9, "age"] = np.nan
    typed.loc[10:14, "category"] = "C9"  # a level the calibration window never saw: withheld
    typed.loc[15:19, "sex"] = None
    expected = WITHHELD.call_thresholds(typed, 0.92)
    assert np.array_equal(scorer.call_thresholds(typed), expected)
    assert np.isinf(expected[10:15]).all() and np.isfinite(expected).any()
    # Object columns (values as sent in JSON) take the per-call path: the same thresholds.
    sent = typed.astype({"age": object})
    assert np.array_equal(scorer.call_thresholds(sent), expected)


def _tree_scorer(calls, withheld=None):
    frame = add_time_features(calls, "call_time", ["hour"])
    train, held = frame.iloc[:12_000], frame.iloc[12_000:]
    estimator = lgb.LGBMClassifier(n_estimators=30, num_leaves=15, n_jobs=1, verbose=-1, random_state=0)
    pipeline = make_classifier_pipeline(estimator, CATEGORICAL, SPEC.model_numeric, train)
    pipeline = fit_classifier(pipeline, train, train["safe_remote"].to_numpy(), {}, len(CATEGORICAL))
    model = TreeModel.from_pipeline(pipeline)
    encoded = model.encode(held)
    calibrator = fit_calibrator(model.raw_score(encoded), held["safe_remote"].to_numpy(), "sigmoid")
    table = ContributionTable(len(CATEGORICAL)).fit(encoded[:2000], model.contributions(encoded[:2000]))
    rules = [HardRule("category", ("C1",))]
    return RemoteClosureScorer(
        model, calibrator, 0.9, rules, SPEC, table, exact_max_rows=100, withheld=withheld
    )


@pytest.mark.parametrize("family", ["tree", "logistic"])
def test_reasons_computed_block_by_block_are_the_same(calls, monkeypatch, family):
    if family == "tree":
        scorer = _tree_scorer(calls, WITHHELD)
    else:
        model, frame = _linear(calls)
        raw = model.raw_score(model.encode(frame))
        calibrator = fit_calibrator(raw, frame["safe_remote"].to_numpy(), "sigmoid")
        rules = [HardRule("category", ("C1",))]
        scorer = RemoteClosureScorer(model, calibrator, 0.9, rules, SPEC, withheld=WITHHELD)
    request = _messy(calls.iloc[16_000:17_500]).reset_index(drop=True)
    at_once = {mode: scorer.predict(request, reasons=mode) for mode in ("auto", "exact", "fast", "none")}
    monkeypatch.setattr(scorer_module, "_EXPLAIN_BLOCK", 97)
    for mode, answer in at_once.items():
        pd.testing.assert_frame_equal(scorer.predict(request, reasons=mode), answer)
    assert (at_once["auto"]["reasons"] != "").all() and (at_once["none"]["reasons"] == "").all()
    # Exact reasons as computed before the blocks: on the open calls' own rows, labelled among themselves.
    frame = scorer.model_frame(request)
    open_rows = np.flatnonzero(request["category"] != "C1")
    encoded = scorer.model.encode(frame)[open_rows]
    names = SPEC.names
    shown = display_values(frame.iloc[open_rows], names, CATEGORICAL)
    expected = top_reasons(scorer.model.contributions(encoded), shown, names, scorer.top_k)
    assert at_once["exact"]["reasons"].to_numpy()[open_rows].tolist() == expected.tolist()
