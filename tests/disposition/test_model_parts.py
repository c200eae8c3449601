"""Encoding, calibration, reasons and the scorer: the pieces that decide and explain each call."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from disposition.calibration import choose_method, fit_calibrator
from disposition.features import CallEncoder, add_time_features
from disposition.model import LinearModel, TreeModel, fit_classifier, make_classifier_pipeline, model_input
from disposition.reasons import ContributionTable, agreement, display_values, top_reasons
from disposition.safety import HardRule
from disposition.scorer import FeatureSpec, RemoteClosureScorer, RequestError

CATEGORICAL = ["area", "category", "symptom_group", "sex"]
NUMERIC = [
    "age",
    "care_home",
    "contacts_7d",
    "contacts_30d",
    "long_term_conditions",
    "severe_pain",
    "able_to_walk",
]
SPEC = FeatureSpec(CATEGORICAL, NUMERIC, "call_time", ["hour"])


def test_encoder_maps_unseen_and_missing_to_nan_and_round_trips():
    train = pd.DataFrame({"area": ["a", "b", "b"], "n": [1, 2, 3]})
    encoder = CallEncoder(["area"], ["n"]).fit(train)
    out = encoder.transform(pd.DataFrame({"area": ["b", "zzz", None], "n": [1, None, 3]}))
    assert out[0, 0] == 1 and np.isnan(out[1, 0]) and np.isnan(out[2, 0]) and np.isnan(out[1, 1])
    same = CallEncoder.from_dict(encoder.to_dict()).transform(train)
    assert np.array_equal(same, encoder.transform(train))
    # Category codes written as numbers match their text: 1, 1.0 and "1" are one level.
    numeric_codes = CallEncoder(["area"], []).fit(pd.DataFrame({"area": [1, 2]}))
    assert numeric_codes.transform(pd.DataFrame({"area": ["1", 2.0]})).ravel().tolist() == [0, 1]


def test_calibration_choice_by_size_and_fit_quality():
    assert choose_method("auto", 50_000, 10_000) == "isotonic"
    assert choose_method("auto", 2_000, 10_000) == "sigmoid"
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, 40_000)
    y = rng.uniform(size=raw.size) < expit(0.5 * raw + 1)  # the raw score is over-confident and shifted
    for method in ("isotonic", "sigmoid"):
        calibrator = fit_calibrator(raw, y, method)
        p = calibrator.predict(raw)
        assert abs(p.mean() - y.mean()) < 0.01
        assert np.all(np.diff(calibrator.predict(np.sort(raw))) >= 0)  # monotone: ranking kept
        assert calibrator.from_dict(calibrator.to_dict()).predict(raw[:10]) == pytest.approx(p[:10])
    iso = fit_calibrator(raw, y, "isotonic").predict(raw)
    assert len(np.unique(iso)) > 0.5 * len(np.unique(np.round(raw, 3)))  # centred: few ties


@pytest.fixture(scope="module")
def fitted(calls):
    frame = add_time_features(calls, "call_time", ["hour"])
    train, held = frame.iloc[:16_000], frame.iloc[16_000:]
    estimator = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, n_jobs=1, verbose=-1, random_state=0)
    pipeline = make_classifier_pipeline(estimator, CATEGORICAL, SPEC.model_numeric, train)
    pipeline = fit_classifier(pipeline, train, train["safe_remote"].to_numpy(), {}, len(CATEGORICAL))
    model = TreeModel.from_pipeline(pipeline)
    encoded = model.encode(held)
    calibrator = fit_calibrator(model.raw_score(encoded), held["safe_remote"].to_numpy(), "sigmoid")
    table = ContributionTable(len(CATEGORICAL)).fit(encoded[:2000], model.contributions(encoded[:2000]))
    rules = [HardRule("category", ("C1",))]
    scorer = RemoteClosureScorer(model, calibrator, 0.9, rules, SPEC, table, top_k=3, exact_max_rows=100)
    return scorer, calls.iloc[16_000:].reset_index(drop=True)


def test_scorer_contract_rules_reasons_and_round_trip(fitted, tmp_path):
    scorer, held = fitted
    request = held[scorer.required_columns].head(500)
    answer = scorer.predict(request)
    assert list(answer.columns) == ["p_safe_remote", "recommend_remote", "threshold", "reasons"]
    assert answer.index.equals(request.index)
    c1 = request["category"] == "C1"
    assert (
        not answer.loc[c1, "recommend_remote"].any()
        and answer.loc[c1, "reasons"].str.startswith("never").all()
    )
    assert (answer["recommend_remote"] == (~c1 & (answer["p_safe_remote"] >= 0.9))).all()
    reason = answer.loc[~c1, "reasons"].iloc[0]
    assert reason.count(";") == 2 and ("(raises)" in reason or "(lowers)" in reason)
    # "auto": batches above exact_max_rows (100) get fast reasons, small ones exact TreeSHAP.
    assert (answer["reasons"] == scorer.predict(request, reasons="fast")["reasons"]).all()
    small = request.head(50)
    assert (scorer.predict(small)["reasons"] == scorer.predict(small, reasons="exact")["reasons"]).all()
    assert (scorer.predict(request, reasons="none")["reasons"] == "").all()

    loaded = RemoteClosureScorer.load(scorer.save(tmp_path / "scorer"))
    pd.testing.assert_frame_equal(
        loaded.predict(request, reasons="exact"), scorer.predict(request, reasons="exact")
    )


def test_scorer_rejects_bad_requests_but_scores_gaps(fitted):
    scorer, held = fitted
    request = held[scorer.required_columns].head(5).copy()
    with pytest.raises(RequestError, match="lacks column.*age"):
        scorer.predict(request.drop(columns=["age"]))
    with pytest.raises(RequestError, match="'age' must hold numbers"):
        scorer.predict(request.assign(age="old"))
    with pytest.raises(RequestError, match="date-times"):
        scorer.predict(request.assign(call_time="yesterday"))
    with pytest.raises(RequestError, match="reasons must be"):
        scorer.predict(request, reasons="all")
    with pytest.raises(RequestError, match="no calls"):
        scorer.predict(request.head(0))
    gaps = request.assign(age=np.nan, symptom_group="brand_new_group", call_time=pd.NaT)
    answer = scorer.predict(gaps)
    assert answer["p_safe_remote"].between(0, 1).all() and answer["reasons"].str.contains("missing").any()


def test_fast_reasons_agree_with_exact_ones(fitted):
    scorer, held = fitted
    encoded = scorer.model.encode(scorer.model_frame(held.head(2000)))
    stats = agreement(scorer.model.contributions(encoded), scorer.reason_table.lookup(encoded), 3)
    assert stats["top1"] > 0.7 and stats["top_k_overlap"] > 0.7


def test_top_reasons_orders_by_size_and_names_direction():
    frame = pd.DataFrame({"a": ["x", "y"], "b": [1.0, np.nan], "c": [0.25, 3.0]})
    contributions = np.array([[0.1, -2.0, 0.5], [-0.3, 0.2, 0.0]])
    text = top_reasons(contributions, display_values(frame, ["a", "b", "c"], ["a"]), ["a", "b", "c"], 2)
    assert text.tolist() == ["b=1 (lowers); c=0.25 (raises)", "a=y (lowers); b=missing (raises)"]


def test_logistic_contributions_add_up_to_the_score(calls):
    frame = add_time_features(calls.head(6000), "call_time", ["hour"])
    pipeline = make_classifier_pipeline(
        LogisticRegression(max_iter=500), CATEGORICAL, SPEC.model_numeric, frame
    )
    X = model_input(pipeline, frame, CATEGORICAL, SPEC.model_numeric)
    pipeline = fit_classifier(pipeline, X, frame["safe_remote"].to_numpy(), {}, len(CATEGORICAL))
    model = LinearModel.from_pipeline(pipeline, CATEGORICAL, SPEC.model_numeric, frame)
    encoded = model.encode(frame.head(50))
    total = model.contributions(encoded).sum(axis=1)
    baseline = model.raw_score(encoded) - total
    assert np.allclose(baseline, baseline[0])  # score = constant + sum of per-feature contributions
