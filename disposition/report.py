"""Subgroup results, the reliability plot and the markdown evaluation report.

Subgroups follow TRIPOD+AI habits: age bands (including 65-84 and 85+), sex, ARP category and time
of day. A subgroup is flagged when the upper bound of its under-triage exceeds the limit: either
its observed under-triage is too high, or it has too few recommended calls to show it is low
enough. Both are reasons for a clinician to be careful, and the flag says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # reports are written in batch jobs and tests, never shown on screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from disposition.evaluation import SafetySettings  # noqa: E402
from disposition.features import categorical_strings  # noqa: E402
from disposition.metrics import classification_metrics, reliability_table  # noqa: E402
from disposition.subgroup_safety import higher_than_rest  # noqa: E402
from disposition.threshold import required_calls  # noqa: E402

# The subgroup table's columns, present even when no subgroup is configured (an empty table).
SUBGROUP_COLUMNS = (
    "group",
    "level",
    "calls",
    "safe_share",
    "auc",
    "auprc",
    "ece",
    "closure_share",
    "recommended",
    "unsafe_recommended",
    "under_triage",
    "upper_bound",
    "flagged",
    "flag_reason",
)
TIME_OF_DAY = (("night 00-06", 0), ("morning 06-12", 6), ("afternoon 12-18", 12), ("evening 18-24", 18))


def age_band_labels(age: pd.Series, edges: Sequence[int]) -> np.ndarray:
    """Labels such as ``18-64`` and ``85+`` for lower band edges ``[0, 18, 65, 85]``."""
    edges = sorted(int(e) for e in edges)
    names = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)] + [f"{edges[-1]}+"]
    years = pd.to_numeric(age, errors="coerce").to_numpy(dtype=float)
    index = np.searchsorted(edges, years, side="right") - 1
    labels = np.asarray(names, dtype=object)[np.clip(index, 0, len(names) - 1)]
    return np.where(np.isnan(years) | (index < 0), "missing", labels)


def time_of_day_labels(when: pd.Series) -> np.ndarray | None:
    """Four six-hour periods, or None when the column carries no times (all at midnight)."""
    times = pd.to_datetime(when)
    if (times == times.dt.normalize()).all():
        return None
    starts = np.array([start for _, start in TIME_OF_DAY])
    names = np.array([name for name, _ in TIME_OF_DAY], dtype=object)
    return names[np.searchsorted(starts, times.dt.hour.to_numpy(), side="right") - 1]


def subgroup_labels(
    frame: pd.DataFrame, columns: Mapping[str, str | None], age_edges: Sequence[int], date_column: str | None
) -> dict[str, np.ndarray]:
    """Label arrays for the configured subgroup columns that exist (age, sex, category) and time of day."""
    labels = {}
    if columns.get("age") in frame.columns:
        labels["age_band"] = age_band_labels(frame[columns["age"]], age_edges)
    for group in ("sex", "category"):
        column = columns.get(group)
        if column in frame.columns:
            text = categorical_strings(frame[column])
            labels[group] = np.where(pd.isna(text), "missing", text)
    periods = time_of_day_labels(frame[date_column]) if date_column else None
    if periods is not None:
        labels["time_of_day"] = periods
    return labels


def subgroup_table(
    labels: Mapping[str, np.ndarray],
    y: np.ndarray,
    p: np.ndarray,
    recommend: np.ndarray,
    safety: SafetySettings,
    bins: int = 10,
) -> pd.DataFrame:
    """One row per subgroup level with discrimination, calibration, closure and under-triage.

    No labels (no subgroup column configured, dates without times) give an empty table that still
    has every column.
    """
    rows = []
    unsafe = np.asarray(y) == 0
    for group, values in labels.items():
        for level in sorted(pd.unique(values)):
            mask = values == level
            result = safety.apply(p[mask], unsafe[mask], recommend[mask], threshold=-np.inf)
            flagged = result.n_recommended > 0 and result.upper_bound > safety.limit
            if not flagged:
                why = ""
            elif result.under_triage > safety.limit:
                why = f"observed under-triage {100 * result.under_triage:.2f} % is above the limit"
            else:
                why = (
                    f"observed {100 * result.under_triage:.2f} %, but {result.n_recommended} recommended "
                    "calls are too few to bound it within the limit (it would need at least "
                    f"{required_calls(safety.limit, safety.delta):,} with none unsafe)"
                )
            metrics = classification_metrics(y[mask], p[mask], bins)
            rows.append(
                {
                    "group": group,
                    "level": level,
                    "calls": int(mask.sum()),
                    "safe_share": metrics["safe_share"],
                    "auc": metrics["auc"],
                    "auprc": metrics["auprc"],
                    "ece": metrics["ece"],
                    "closure_share": result.share,
                    "recommended": result.n_recommended,
                    "unsafe_recommended": result.n_unsafe,
                    "under_triage": result.under_triage,
                    "upper_bound": result.upper_bound if result.n_recommended else float("nan"),
                    "flagged": bool(flagged),
                    "flag_reason": why,
                }
            )
    table = pd.DataFrame(rows, columns=list(SUBGROUP_COLUMNS)).astype({"flagged": bool})
    return higher_than_rest(table, safety.delta)  # adds higher_p_holm and higher_than_rest


def reliability_figure(
    y: np.ndarray, p: np.ndarray, by: Mapping[str, np.ndarray] | None = None, bins: int = 10
):
    """Reliability diagram: observed share safe against predicted, overall and by subgroup level."""
    figure, axes = plt.subplots(1, 2 if by else 1, figsize=(11 if by else 5.5, 5), squeeze=False)
    panels = [("all held-out calls", {"all calls": np.ones(len(y), dtype=bool)})]
    if by:
        name, values = next(iter(by.items()))
        panels.append(
            (f"by {name.replace('_', ' ')}", {lvl: values == lvl for lvl in sorted(pd.unique(values))})
        )
    for axis, (title, masks) in zip(axes[0], panels, strict=True):
        axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        for label, mask in masks.items():
            if mask.sum() < bins * 5:
                continue
            table = reliability_table(y[mask], p[mask], bins)
            axis.plot(
                table["predicted"],
                table["observed"],
                marker="o",
                markersize=3,
                label=f"{label} (n={mask.sum():,})",
            )
        axis.set(
            xlabel="predicted P(safe remote closure)",
            ylabel="observed share safe",
            title=title,
            xlim=(0, 1),
            ylim=(0, 1),
        )
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A small DataFrame as a GitHub markdown table (no extra dependency)."""

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def percent(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.{digits}f} %"
