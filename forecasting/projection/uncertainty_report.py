"""The report section saying how wide the ten-year ranges are and where the width comes from
(pipeline layer: it formats :class:`~forecasting.projection.uncertainty.TrendUncertainty` for the
report's sections hook)."""

from __future__ import annotations

import numpy as np

from forecasting.projection.report import ReportSection, ReportTable
from forecasting.projection.uncertainty import TrendUncertainty

Z80 = 1.2816  # P90 of a standard normal: P10-P90 is +-1.28 sd


def uncertainty_section(uncertainty: TrendUncertainty, population_sd: float, horizon: int) -> ReportSection:
    """Parameters, the resulting spread by horizon, and the evidence behind them."""
    if not uncertainty.active:
        return ReportSection(
            "How wide the ranges are",
            [
                "This run keeps only the fitted model's own uncertainty (uncertainty=none): over a decade "
                "that is far narrower than how much use per person has really varied between trusts and "
                "years. The default, uncertainty=estimated, widens the ranges accordingly."
            ],
        )
    u = uncertainty
    years = sorted({1, 3, 5, horizon} & set(range(1, horizon + 1)))
    rows = []
    for h in years:
        sd = float(np.sqrt(u.variance(h)))
        rows.append(
            [
                str(h),
                f"{100 * sd:.1f} %",
                f"-{100 * (1 - np.exp(-Z80 * sd)):.0f} % / +{100 * np.expm1(Z80 * sd):.0f} %",
            ]
        )
    paragraphs = [
        "A trend fitted on a few years says little about the next ten. Besides the fitted model's own "
        "uncertainty, each simulated future lets use per person wander from the fitted trend in three ways, "
        "learnt from real variation between the 10 English ambulance trusts (AmbSYS, 2018-2019) and the "
        "7 areas of South Western Ambulance Service (2014-2019):",
        f"a lasting error in the yearly trend (sd {100 * u.drift_sd:.2f} points a year, so its effect grows "
        "in step with the years ahead); year-to-year changes that accumulate "
        f"(sd {100 * u.innovation_sd:.1f} % a year, growing as the square root of the years ahead); and "
        "sudden "
        f"level shifts such as a new service or a pandemic ({100 * u.shift_probability:.0f} % chance a year, "
        f"sd {100 * u.shift_sd:.1f} %).",
        f"The projected population change is uncertain by {100 * population_sd:.0f} % of itself (the spread "
        "between the ONS 2018- and 2020-based projections). All areas share these draws: a national change "
        "moves them together.",
        "Checked on every real history available, estimated without the years it is scored on: the P10-P90 "
        "held 69 % of 58 actual area- and trust-years (nominal 80 %), about four of them independent checks "
        "of the common error; see experiments/results/projection_real_backtest.md.",
    ]
    table = ReportTable(
        "Spread of use per person around the fitted trend from these three parts alone",
        ["Years ahead", "Standard deviation", "P10 / P90 around the trend"],
        rows,
        note="Parameters: conf/uncertainty/estimated.yaml (experiments/results/projection_uncertainty.md).",
    )
    return ReportSection("How wide the ranges are", paragraphs, [table])
