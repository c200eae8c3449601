"""The console summary of a training run says in words when nobody is recommended."""

from disposition.train import _deployed


def _metrics(threshold: float, share: float) -> dict[str, float]:
    return {
        "selection_threshold": threshold,
        "test_deployed_share": share,
        "test_deployed_under_triage": 0.004,
        "test_deployed_upper_bound": 0.0071,
    }


def test_no_threshold_is_said_in_words_not_as_inf():
    line = _deployed(_metrics(float("inf"), 0.0))
    assert "inf" not in line and "no call recommended" in line


def test_a_threshold_names_the_window_of_its_bound():
    line = _deployed(_metrics(0.9777, 0.1217))
    assert "P(safe) >= 0.9777" in line and "12.2 %" in line and "test-window upper bound 0.71 %" in line
