"""The joint (intersection-union) threshold: valid at delta family-wise, and no longer ended by one
failed first test."""

import numpy as np

from disposition.joint_threshold import joint_threshold, plan_served_levels
from disposition.threshold import Plan

LIMIT, DELTA = 0.01, 0.05


def _null_draw(rng, n=4_000):
    """Scores that carry no information; level F is safe (0.2 %) but level M's true rate is exactly
    the limit: every candidate's joint hypothesis is a true null, so any recommendation is a false
    certification of M, however safe F and the overall rate (0.6 %) look."""
    p = rng.random(n)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    unsafe = rng.random(n) < np.where(sex == "M", LIMIT, 0.002)
    return p, unsafe, sex


def test_wrongly_certifying_a_rate_at_the_limit_stays_within_delta_over_repeated_draws():
    rng = np.random.default_rng(7)
    starts = [(600, 0.6), (1_500, 0.25), (3_000, 0.15)]
    wrong, draws = 0, 600
    for _ in range(draws):
        p, unsafe, sex = _null_draw(rng)
        test = joint_threshold(
            p, unsafe, np.ones(len(p), bool), LIMIT, DELTA, starts, {"sex": sex}, {"sex": ["F", "M"]}, grid=40
        )
        wrong += np.isfinite(test.threshold)
    # The guarantee is error <= 0.05; Binomial(600, 0.05) exceeds 45 (7.5 %) with probability < 0.1 %.
    assert wrong <= 45, wrong
    # ... and the test is not vacuous: the overall rate alone (no level tested) is falsely safe
    # often enough to be certified in many draws, which the joint test refuses.
    rng = np.random.default_rng(7)
    overall_only = sum(
        np.isfinite(
            joint_threshold(
                *_null_draw(rng)[:2], np.ones(4_000, bool), LIMIT, DELTA, starts, grid=40
            ).threshold
        )
        for _ in range(100)
    )
    assert overall_only > 50, overall_only


def _two_level_calls(rng, n=60_000):
    """The top third of the scores is safe (rate 0.3 %) in both levels, the rest risky (3 %)."""
    p = rng.random(n)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    unsafe = rng.random(n) < np.where(p > 2 / 3, 0.003, 0.03)
    return p, unsafe, sex


def test_a_failed_first_start_no_longer_ends_everything():
    rng = np.random.default_rng(3)
    p, unsafe, sex = _two_level_calls(rng)
    everyone = np.ones(len(p), bool)
    # A first start planned far too loose (half of all calls: rate about 1.6 %) is not rejected.
    alone = joint_threshold(p, unsafe, everyone, LIMIT, DELTA, [(30_000, 1.0)])
    assert not np.isfinite(alone.threshold) and alone.tested == 1
    # With a share of delta on a stricter start, that walk still recommends the safe calls.
    both = joint_threshold(p, unsafe, everyone, LIMIT, DELTA, [(30_000, 0.6), (5_000, 0.4)])
    assert np.isfinite(both.threshold)
    recommended = p >= both.threshold
    assert 10_000 < recommended.sum() <= 25_000
    assert unsafe[recommended].mean() < LIMIT


def test_every_served_level_is_tested_and_the_weakest_names_the_binding_one():
    rng = np.random.default_rng(5)
    p, unsafe, sex = _two_level_calls(rng)
    # Level M is made risky everywhere: with it served, no threshold passes; withheld, F is served.
    unsafe = unsafe | ((sex == "M") & (rng.random(len(p)) < 0.02))
    everyone = np.ones(len(p), bool)
    starts = [(2_000, 1.0)]
    with_m = joint_threshold(p, unsafe, everyone, LIMIT, DELTA, starts, {"sex": sex}, {"sex": ["F", "M"]})
    assert not np.isfinite(with_m.threshold)
    only_f = joint_threshold(p, unsafe, sex == "F", LIMIT, DELTA, starts, {"sex": sex}, {"sex": ["F"]})
    assert np.isfinite(only_f.threshold)
    served = (sex == "F") & (p >= only_f.threshold)
    assert unsafe[served].mean() < LIMIT


def test_planning_withholds_the_level_its_own_data_show_to_be_risky():
    rng = np.random.default_rng(11)
    p, unsafe, sex = _two_level_calls(rng)
    unsafe = unsafe | ((sex == "M") & (rng.random(len(p)) < 0.02))
    plan = Plan(p, unsafe, np.ones(len(p), bool))
    cal_sex = np.where(rng.random(20_000) < 0.5, "F", "M")
    chosen = plan_served_levels(
        plan, {"sex": sex}, {"sex": cal_sex}, 20_000, LIMIT, DELTA, None, None, 1.0, (0.7, 0.3), (1.0, 0.5)
    )
    assert chosen.served == {"sex": ["F"]} and chosen.withheld == {"sex": ["M"]}
    assert [w for _, w in chosen.starts] == [0.7, 0.3]
    assert chosen.starts[1][0] < chosen.starts[0][0]


def test_the_joint_control_serves_one_threshold_withholds_by_plan_and_round_trips():
    import json

    import pandas as pd

    from disposition.evaluation import SafetySettings
    from disposition.withheld import WithheldLevels, level_controls

    rng = np.random.default_rng(9)

    def calls(n):
        p, unsafe, sex = _two_level_calls(rng, n)
        unsafe = unsafe | ((sex == "M") & (rng.random(n) < 0.02))  # M is risky everywhere
        frame = pd.DataFrame({"age": rng.integers(20, 60, n), "sex": sex, "category": "C3"})
        return frame, p, unsafe

    cal, p, unsafe = calls(30_000)
    plan_calls, plan_p, plan_unsafe = calls(60_000)
    plan = Plan(plan_p, plan_unsafe, np.ones(60_000, bool))
    safety = SafetySettings(
        limit=LIMIT, delta=DELTA, confirm_power=None, subgroup_confirm_power=None, subgroup_control="joint"
    )
    columns = {"age": "age", "sex": "sex", "category": "category"}
    held = level_controls(cal, p, unsafe, [], 0.5, columns, [0, 18, 65, 85], safety, plan, plan_calls)
    assert held.levels == {"sex": ["M"]} and np.isfinite(held.common_threshold)
    request = pd.DataFrame({"age": [40, 40, 90], "sex": ["F", "M", "F"], "category": ["C3", "C3", "C3"]})
    got = held.call_thresholds(request, 0.99)  # the overall walk's threshold is replaced, not combined
    assert got[0] == held.common_threshold and got[1] == np.inf and got[2] == np.inf  # 65+: never seen
    served = (cal["sex"] == "F").to_numpy() & (p >= held.common_threshold)
    assert held.joint["recommended"] == served.sum() and unsafe[served].mean() < LIMIT
    again = WithheldLevels.from_dict(json.loads(json.dumps(held.to_dict())))
    assert again == held
    assert "withheld before testing" in held.describe()[0]


def test_the_joint_settings_are_checked_before_any_work():
    import pytest

    from disposition.config_checks import check_config
    from mlops.errors import ConfigError
    from tests.conftest import compose_config

    check_config(compose_config("disposition", ["safety.subgroup_control=joint"]))
    for overrides, key in [
        (["safety.subgroup_control=both"], "safety.subgroup_control"),
        (["safety.start_shares=[0.7,0.5,0.1]"], "safety.start_fractions"),  # shares sum above 1
        (["safety.start_fractions=[1.0]"], "safety.start_fractions"),  # one share per start
        (["safety.start_fractions=[1.0,0,0.3]"], "safety.start_fractions"),
    ]:
        with pytest.raises(ConfigError) as info:
            check_config(compose_config("disposition", overrides))
        assert str(info.value).startswith(key) and "\n" not in str(info.value), str(info.value)
