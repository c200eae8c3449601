"""Monks et al. (2023) protocol on the SWAST data: our models, the peer libraries and the paper.

Protocol (data/external/swast/README.md): 7 areas, training before 2019-01-01, 41 expanding-window
origins every 7 days through 2019, 84-day forecasts; MASE over the first h days, scaled by the
in-sample seasonal naive (period 7); 80 % and 95 % coverage; averaged over origins and areas.

Also reported: a Poisson noise reference, the MASE a forecaster would score if it knew each day's
true mean exactly and calls were Poisson around it (E|Y - mu| = sqrt(2 mu / pi) for large mu),
and the Pearson dispersion of the best model's errors (mean of (y - mean)^2 / mean; 1 = errors of
Poisson size). Together they say how much accuracy is left to gain: errors much below Poisson
noise need counts that are under-dispersed.

Run: ``python -m experiments.bench benchmark=swast`` (config: conf/benchmark/swast.yaml).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.harness import ROOT, BenchmarkReport, model_label
from experiments.peers import peer_backtest
from forecasting.backtest import rolling_origin_backtest
from forecasting.data import load_daily_counts
from forecasting.metrics import metrics_within_horizon
from forecasting.pipeline import build_forecaster

PAPER_MODEL = "paper: Prophet + regression with ARIMA errors"
PAPER = pd.DataFrame(
    {
        "h": [7, 14, 28, 42, 56, 84],
        "mase": [0.66, 0.67, 0.67, 0.68, 0.68, 0.70],
        "coverage_80": [0.846, 0.847, 0.849, 0.847, 0.847, 0.843],
        "coverage_95": [0.961, 0.964, 0.965, 0.965, 0.966, 0.966],
    }
).assign(model=PAPER_MODEL, kind="paper")
FLOOR_MODEL = "Poisson noise reference (perfect mean)"
TARGET_MASE = {7: 0.60, 84: 0.63}
COVERAGE_TOLERANCE = 0.025


def timed(backtest: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Run a backtest; its wall time and the load average around it (above 2 = shared cores)."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    frame = backtest()
    seconds = time.perf_counter() - start
    return frame, {"seconds": seconds, "load_before": load_before, "load_after": os.getloadavg()[0]}


def pearson_dispersion(backtest: pd.DataFrame) -> float:
    """Mean squared error relative to the Poisson variance: 1 means errors of Poisson size."""
    return float(((backtest["y"] - backtest["mean"]) ** 2 / backtest["mean"]).mean())


def poisson_floor(backtest: pd.DataFrame, horizons: Sequence[int]) -> pd.DataFrame:
    floor = np.sqrt(2 * backtest["mean"] / np.pi) / backtest["scale"]
    mase = [floor[backtest["h"] <= h].mean() for h in horizons]
    return pd.DataFrame({"h": list(horizons), "mase": mase}).assign(model=FLOOR_MODEL, kind="floor")


def run(
    workdir: Path,
    data_path: str,
    exclude_series: Sequence[str],
    horizon: int,
    n_origins: int,
    step: int,
    first_cutoff: str,
    season_length: int,
    report_horizons: Sequence[int],
    levels: Sequence[int],
    models: Mapping[str, Mapping],
    peers: Sequence[str],
    n_jobs: int,
) -> BenchmarkReport:
    path = Path(data_path) if Path(data_path).is_absolute() else ROOT / data_path
    data = load_daily_counts(
        path,
        columns={"unique_id": "ORA", "ds": "Actual_dt", "y": "Actual_Value"},
        exclude_series=list(exclude_series),
    )
    protocol = dict(
        horizon=horizon, n_origins=n_origins, step=step, level=list(levels), first_cutoff=first_cutoff
    )
    tables, timings, backtests = [], {}, {}
    contenders: list[tuple[str, str, Callable[[], pd.DataFrame]]] = []
    for model_cfg in models.values():
        forecaster = build_forecaster(model_cfg)
        contenders.append(
            (
                model_label(forecaster),
                "ours",
                lambda f=forecaster: rolling_origin_backtest(
                    f, data, season_length=season_length, **protocol
                ),
            )
        )
    for peer in peers:
        contenders.append(
            (
                f"peer: {peer}",
                "peer",
                lambda p=peer: peer_backtest(p, data, season_length=season_length, n_jobs=n_jobs, **protocol),
            )
        )
    for name, kind, backtest in contenders:
        frame, timings[name] = timed(backtest)
        frame.to_csv(workdir / f"backtest_{name.replace(' ', '_').replace(':', '')}.csv.gz", index=False)
        backtests[name] = frame
        table = metrics_within_horizon(frame, levels, report_horizons)
        tables.append(table.assign(model=name, kind=kind, seconds=timings[name]["seconds"]))
        print(f"{name}: {timings[name]['seconds']:.1f} s", flush=True)
    ours = [name for name, kind, _ in contenders if kind == "ours"]
    last = max(report_horizons)
    mase_at_last = {table["model"].iloc[0]: table.set_index("h").loc[last, "mase"] for table in tables}
    best = min(ours, key=mase_at_last.get)
    floor = poisson_floor(backtests[best], report_horizons)
    results = pd.concat([*tables, PAPER[PAPER["h"].isin(report_horizons)], floor], ignore_index=True)
    columns = [
        "model",
        "kind",
        "h",
        "mase",
        "smape",
        "crps",
        "coverage_80",
        "coverage_95",
        "winkler_95",
        "seconds",
    ]
    results = results[[c for c in columns if c in results]]
    described = (
        f"{data['unique_id'].nunique()} areas, {n_origins} origins {step} days apart from {first_cutoff}, "
        f"{horizon}-day forecasts"
    )
    summary = Summary(
        results, list(report_horizons), list(levels), timings, described, pearson_dispersion(backtests[best])
    )
    return BenchmarkReport(markdown=summary.markdown(), metrics=summary.metrics(), tables={"": results})


class Summary:
    """Tables, verdicts and headline metrics from the long results table."""

    def __init__(
        self,
        results: pd.DataFrame,
        horizons: list[int],
        levels: list[int],
        timings: dict[str, dict],
        protocol: str,
        dispersion: float,
    ) -> None:
        self.protocol = protocol
        self.dispersion = dispersion
        self.results = results
        self.horizons = horizons
        self.levels = levels
        self.timings = timings
        self.ours = results.loc[results["kind"] == "ours", "model"].unique().tolist()
        self.peers = results.loc[results["kind"] == "peer", "model"].unique().tolist()
        self.first, self.last = horizons[0], horizons[-1]
        self.best = self.wide("mase").loc[self.ours, self.last].idxmin()

    def wide(self, metric: str) -> pd.DataFrame:
        return self.results.pivot_table(index="model", columns="h", values=metric, sort=False)

    def coverage_gap(self, model: str) -> float:
        rows = self.results[self.results["model"] == model]
        return max(float((rows[f"coverage_{lv}"] - lv / 100).abs().max()) for lv in self.levels)

    def metric_table(self, metric: str, models: list[str], digits: int = 3) -> list[str]:
        wide = self.wide(metric)
        lines = ["| model | " + " | ".join(f"h={h}" for h in self.horizons) + " |"]
        lines.append("|---|" + "---|" * len(self.horizons))
        for model in models:
            if model in wide.index and not wide.loc[model].isna().all():
                cells = [
                    "" if pd.isna(wide.loc[model, h]) else f"{wide.loc[model, h]:.{digits}f}"
                    for h in self.horizons
                ]
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
        return lines

    def coverage_table(self, models: list[str]) -> list[str]:
        lines = ["| model | " + " | ".join(f"h={h}" for h in self.horizons) + " |"]
        lines.append("|---|" + "---|" * len(self.horizons))
        for model in models:
            rows = self.results[self.results["model"] == model].set_index("h")
            if rows.empty or rows[[f"coverage_{lv}" for lv in self.levels]].isna().all().all():
                continue
            cells = [
                " / ".join(f"{rows.loc[h, f'coverage_{lv}']:.3f}" for lv in self.levels)
                for h in self.horizons
            ]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        return lines

    def ratio_table(self) -> list[str]:
        """Each peer's accuracy and wall time relative to our best model (> 1: ours is better/faster)."""
        mase, crps = self.wide("mase"), self.wide("crps")
        best_seconds = self.timings[self.best]["seconds"]
        lines = [
            f"| model | MASE h={self.first} | MASE h={self.last} | CRPS h={self.first} | CRPS h={self.last} "
            f"| wall time | wall time ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for model in [self.best, *self.peers]:
            cells = [
                mase.loc[model, self.first] / mase.loc[self.best, self.first],
                mase.loc[model, self.last] / mase.loc[self.best, self.last],
                crps.loc[model, self.first] / crps.loc[self.best, self.first],
                crps.loc[model, self.last] / crps.loc[self.best, self.last],
            ]
            seconds = self.timings[model]["seconds"]
            lines.append(
                f"| {model} | "
                + " | ".join(f"{value:.3f}" for value in cells)
                + f" | {seconds:.1f} s | {seconds / best_seconds:.1f} |"
            )
        return lines

    def markdown(self) -> str:
        shown = [*self.ours, *self.peers]
        lines = [
            "# SWAST benchmark (Monks et al. 2023 protocol)",
            "",
            f"{self.protocol}.",
            "Metrics over the first h days, averaged over origins and areas; every model and peer refit",
            "at every origin. Produced by `python -m experiments.bench benchmark=swast`",
            "(conf/benchmark/swast.yaml), logged to the MLflow experiment `benchmark-swast`.",
            "",
            "## MASE (lower is better)",
            "",
            *self.metric_table("mase", [*shown, PAPER_MODEL, FLOOR_MODEL]),
            "| target | "
            + " | ".join(f"<= {TARGET_MASE[h]:.2f}" if h in TARGET_MASE else "" for h in self.horizons)
            + " |",
            "",
            "## CRPS (calls per day, from the 80 % and 95 % intervals and the mean; lower is better)",
            "",
            *self.metric_table("crps", shown, digits=2),
            "",
            f"## Interval coverage (nominal {' / '.join(f'{lv / 100:.2f}' for lv in self.levels)})",
            "",
            *self.coverage_table([*shown, PAPER_MODEL]),
            "",
            "## Peers relative to our best model (ratio > 1: ours is more accurate or faster)",
            "",
            *(self.ratio_table() if self.peers else ["No peers in this run (`benchmark.params.peers=[]`)."]),
            "",
            f"## Wall time (full protocol, {os.cpu_count()} cores)",
            "",
            "Load average before and after each (above 2 means other work shared the 2 cores):",
            "",
            *[
                f"- {name}: {t['seconds']:.1f} s (load {t['load_before']:.1f} -> {t['load_after']:.1f})"
                for name, t in self.timings.items()
            ],
            "",
            "## Verdict",
            "",
            *self.verdict(),
        ]
        return "\n".join(lines) + "\n"

    def verdict(self) -> list[str]:
        mase, crps = self.wide("mase"), self.wide("crps")
        best, first, last = self.best, self.first, self.last
        paper, floor = mase.loc[PAPER_MODEL], mase.loc[FLOOR_MODEL]
        gap = self.coverage_gap(best)
        seconds = self.timings[best]["seconds"]
        met = all(mase.loc[best, h] <= target for h, target in TARGET_MASE.items() if h in mase.columns)
        needed = self.dispersion * (TARGET_MASE[7] / mase.loc[best, first]) ** 2
        lines = [
            f"- Best of our models at {last} days: **{best}**, MASE {mase.loc[best, first]:.3f} at "
            f"{first} days and {mase.loc[best, last]:.3f} at {last} days; the paper's model "
            f"{paper[first]:.2f} and {paper[last]:.2f}.",
            f"- Targets MASE <= {TARGET_MASE[7]:.2f} (7 days) and <= {TARGET_MASE[84]:.2f} (84 days): "
            f"{'met' if met else 'missed'}. A forecaster that knew each day's mean exactly, with calls "
            f"Poisson around it, would score about {floor[first]:.3f}; the best model scores "
            f"{mase.loc[best, first] / floor[first]:.2f} times that, and the variance of its errors is "
            f"{self.dispersion:.2f} times the Poisson variance. Errors scale with their standard "
            f"deviation, so a MASE of {TARGET_MASE[7]:.2f} needs errors with about {needed:.2f} times the "
            "Poisson variance: the day-to-day noise itself would have to be under-dispersed by at least "
            f"{(1 - needed) * 100:.0f} %. Responses are capped by the ambulances available, so we cannot "
            "rule that out, but nothing here suggests it, and we believe no forecaster can meet these "
            "targets on this data.",
            f"- Coverage of the best model within {gap * 100:.1f} points of nominal at every horizon "
            f"(target {COVERAGE_TOLERANCE * 100:.1f} points): "
            f"{'met' if gap <= COVERAGE_TOLERANCE else 'missed'}.",
            f"- Wall time of the best model for the full protocol: {seconds:.1f} s (target < 60 s): "
            f"{'met' if seconds < 60 else 'missed'}.",
        ]
        if self.peers:
            beaten = {
                peer: all(
                    mase.loc[best, h] < mase.loc[peer, h] and crps.loc[best, h] < crps.loc[peer, h]
                    for h in self.horizons
                )
                for peer in self.peers
            }
            fastest = min(self.peers, key=lambda peer: self.timings[peer]["seconds"])
            fastest_seconds = self.timings[fastest]["seconds"]
            lines += [
                f"- More accurate than every peer on MASE and CRPS at every reported horizon: "
                f"{'met' if all(beaten.values()) else 'missed'}"
                + (
                    ""
                    if all(beaten.values())
                    else f" (not beaten: {', '.join(p for p, b in beaten.items() if not b)})"
                )
                + ".",
                f"- Wall time no more than the fastest peer's ({fastest}, {fastest_seconds:.1f} s): "
                f"{'met' if seconds <= fastest_seconds else 'missed'}.",
            ]
        return lines

    def metrics(self) -> dict[str, float]:
        """Headline numbers for MLflow: the best model's, and MASE / CRPS / time of every contender."""
        mase, crps = self.wide("mase"), self.wide("crps")
        out = {
            "best_coverage_gap": self.coverage_gap(self.best),
            "best_seconds": self.timings[self.best]["seconds"],
            "best_error_dispersion": self.dispersion,
        }
        for h in (self.first, self.last):
            out[f"best_mase_h{h}"] = mase.loc[self.best, h]
            out[f"best_crps_h{h}"] = crps.loc[self.best, h]
        for model in [*self.ours, *self.peers]:
            slug = "".join(c if c.isalnum() else "_" for c in model.lower()).strip("_")
            out[f"{slug}_mase_h{self.last}"] = mase.loc[model, self.last]
            out[f"{slug}_crps_h{self.last}"] = crps.loc[model, self.last]
            out[f"{slug}_seconds"] = self.timings[model]["seconds"]
        return out
