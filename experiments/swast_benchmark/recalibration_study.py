"""Which interval recalibration to ship, chosen on SWAST's development years (2017-2018) only.

The recalibration (:class:`forecasting.models.BacktestConformal`) refits a model at ``n_windows``
earlier origins and sets its bounds from those errors. Every variant studied here (how many
windows, how far apart, which error scale, how wide a pooling band over horizons, recalibrate
always or only when the model's own coverage misses) needs only the model's forecasts at origins
on one grid: at a development origin ``c`` the windows are the grid origins ``c - horizon - step k``
(their test windows end by ``c``, so no look-ahead), and the forecast to calibrate is the grid
forecast at ``c`` itself. So each model is backtested once on a 14-day grid from before 2017 to
the last development origin (cached), and every variant is scored from those forecasts with no
further fit; the variants' intervals are exactly what the wrapper would give at each origin.

The rule (fixed before any variant was scored; ``choose``): a variant's score is its worst
coverage gap, |coverage - nominal| over both levels (80, 95), the reported horizons (days 1..h
for h in 7, 14, 28, 42, 56, 84), both development years and every model studied. The lowest
score wins; variants within ``TIE`` (0.5 points) of it are ties, broken by fewer windows (each
window is one more fit), then by the narrower mean 95 % interval.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.backtest import rolling_origin_backtest
from forecasting.models.conformal import conformal_quantile

GRID_STEP = 14  # days between the grid's origins: windows 14 or 28 days apart are subsets of it
MAX_SPAN = 12 * 28  # days from the newest window to the oldest one at most (12 windows at 28)
TIE = 0.005  # worst gaps this close to the best are ties (the rule above)


@dataclass(frozen=True)
class Variant:
    """One recalibration setting, as :class:`BacktestConformal` takes it."""

    n_windows: int
    step: int
    scale: str  # "pearson": (y - mean) / sqrt(mean); "relative": (y - mean) / mean
    band: int  # days either side of h whose errors also calibrate h
    recalibrate: str  # "auto": only when the own coverage on the windows misses; "always"

    def label(self) -> str:
        return f"{self.n_windows} x {self.step} d, {self.scale}, +-{self.band} d, {self.recalibrate}"


def variants() -> list[Variant]:
    """The variants studied (fixed with the rule, before any was scored)."""
    grid = itertools.product(
        [(4, 28), (8, 28), (12, 28), (8, 14), (12, 14)],
        ["pearson", "relative"],
        [3, 7, 14],
        ["auto", "always"],
    )
    return [Variant(n, step, scale, band, mode) for (n, step), scale, band, mode in grid]


def development_origins(protocols: Mapping[int, Mapping], lattice_start: pd.Timestamp) -> dict[int, list]:
    """Each development year's origins, moved onto the grid (``lattice_start`` + whole ``step`` s).

    A year's protocol starts on 31 December of the year before; the grid of 28-day steps from the
    first year's start lands one day earlier in a later year after a 365-day year (2017-12-30 for
    2018), so that year's origins are taken one day earlier, which keeps every window on the grid.
    """
    origins = {}
    for year, protocol in protocols.items():
        step = int(protocol["step"])
        offset = (pd.Timestamp(protocol["first_cutoff"]) - lattice_start).days % step
        first = pd.Timestamp(protocol["first_cutoff"]) - pd.Timedelta(days=offset)
        origins[year] = [first + pd.Timedelta(days=step * k) for k in range(int(protocol["n_origins"]))]
    return origins


def grid_origins(first_dev_origin: pd.Timestamp, last_dev_origin: pd.Timestamp, horizon: int) -> dict:
    """The grid backtest's protocol: from the oldest window any variant uses to the last origin."""
    first = pd.Timestamp(first_dev_origin) - pd.Timedelta(days=horizon + MAX_SPAN - 28)
    n_origins = (pd.Timestamp(last_dev_origin) - first).days // GRID_STEP + 1
    return {"first_cutoff": first, "n_origins": n_origins, "step": GRID_STEP, "horizon": horizon}


def grid_forecasts(
    model, history: pd.DataFrame, protocol: Mapping, levels: Sequence[int], season_length: int
):
    """``model``'s backtest at every grid origin (``history`` ends with the development years)."""
    return rolling_origin_backtest(
        model, history, season_length=season_length, level=list(levels), progress=False, **protocol
    )


def _scaled(folds: pd.DataFrame, scale: str) -> np.ndarray:
    mean = np.maximum(folds["mean"].to_numpy(dtype=float), 1e-6)
    error = folds["y"].to_numpy(dtype=float) - mean
    return error / (np.sqrt(mean) if scale == "pearson" else mean)


def _unscale(mean: np.ndarray, z: np.ndarray, scale: str) -> np.ndarray:
    mean = np.maximum(mean, 0.0)
    return mean + z * (np.sqrt(mean) if scale == "pearson" else mean)


def recalibrated(
    grid: pd.DataFrame, origin: pd.Timestamp, variant: Variant, levels: Sequence[int], horizon: int
) -> pd.DataFrame:
    """The forecast at ``origin`` with the bounds ``variant`` gives it (own bounds when it keeps them)."""
    forecast = grid[grid["cutoff"] == origin].copy()
    windows = [origin - pd.Timedelta(days=horizon + variant.step * k) for k in range(variant.n_windows)]
    inner = grid[grid["cutoff"].isin(windows)]
    if inner["cutoff"].nunique() != variant.n_windows:
        raise ValueError(f"the grid lacks windows for {variant.label()} at {origin:%Y-%m-%d}")
    if variant.recalibrate == "auto":
        inside = {lv: (inner["y"] >= inner[f"lo_{lv}"]) & (inner["y"] <= inner[f"hi_{lv}"]) for lv in levels}
        misses = max(abs(float(inside[lv].mean()) - lv / 100) for lv in levels)
        if misses <= 0.025:
            return forecast.assign(recalibrated=False)
    z = _scaled(inner, variant.scale)
    h_inner = inner["h"].to_numpy()
    mean = forecast["mean"].to_numpy(dtype=float)
    h_out = forecast["h"].to_numpy()
    for lv in levels:
        tail = (1 - lv / 100) / 2
        lo, hi = np.empty(horizon), np.empty(horizon)
        for h in range(1, horizon + 1):
            pooled = np.sort(z[np.abs(h_inner - h) <= variant.band])
            lo[h - 1] = conformal_quantile(pooled, tail)
            hi[h - 1] = conformal_quantile(pooled, 1 - tail)
        forecast[f"lo_{lv}"] = np.maximum(_unscale(mean, lo[h_out - 1], variant.scale), 0.0)
        forecast[f"hi_{lv}"] = _unscale(mean, hi[h_out - 1], variant.scale)
    return forecast.assign(recalibrated=True)


def coverage_gaps(
    grids: Mapping[str, pd.DataFrame],
    dev_origins: Mapping[int, Sequence[pd.Timestamp]],
    variant: Variant | None,
    levels: Sequence[int],
    horizons: Sequence[int],
) -> pd.DataFrame:
    """Coverage by model, year, reported horizon and level (``variant`` None: the models' own)."""
    rows = []
    horizon = max(horizons)
    for model, grid in grids.items():
        for year, origins in dev_origins.items():
            if variant is None:
                folds = grid[grid["cutoff"].isin(list(origins))].assign(recalibrated=False)
            else:
                folds = pd.concat([recalibrated(grid, o, variant, levels, horizon) for o in origins])
            share = float(folds.groupby("cutoff")["recalibrated"].first().mean())
            for h, lv in itertools.product(horizons, levels):
                part = folds[folds["h"] <= h]
                inside = (part["y"] >= part[f"lo_{lv}"]) & (part["y"] <= part[f"hi_{lv}"])
                width = float((part[f"hi_{lv}"] - part[f"lo_{lv}"]).mean())
                rows.append(
                    {
                        "model": model,
                        "year": year,
                        "h": h,
                        "level": lv,
                        "coverage": float(inside.mean()),
                        "gap": abs(float(inside.mean()) - lv / 100),
                        "width": width,
                        "recalibrated_share": share,
                    }
                )
    return pd.DataFrame(rows)


def study(
    grids: Mapping[str, pd.DataFrame],
    dev_origins: Mapping[int, Sequence[pd.Timestamp]],
    levels: Sequence[int],
    horizons: Sequence[int],
) -> pd.DataFrame:
    """One row per variant: its worst gap (the rule's score), where it is, and its widths."""
    rows = []
    for variant in variants():
        gaps = coverage_gaps(grids, dev_origins, variant, levels, horizons)
        worst = gaps.loc[gaps["gap"].idxmax()]
        per_model = gaps.groupby("model")["gap"].max()
        rows.append(
            {
                **asdict(variant),
                "variant": variant.label(),
                "worst_gap": float(worst["gap"]),
                "worst_at": f"{worst['model']} {worst['year']} h<={worst['h']} {worst['level']} %",
                "width_95": float(gaps.loc[gaps["level"] == max(levels), "width"].mean()),
                **{f"gap_{model}": float(gap) for model, gap in per_model.items()},
            }
        )
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame) -> pd.Series:
    """The rule: lowest worst gap; ties (within ``TIE``) to fewer windows, then narrower intervals."""
    best = table["worst_gap"].min()
    ties = table[table["worst_gap"] <= best + TIE]
    return ties.sort_values(["n_windows", "width_95"], kind="stable").iloc[0]


def cached_grid(cache: Path, name: str, compute) -> pd.DataFrame:
    path = cache / f"{name}.csv.gz"
    if path.exists():
        return pd.read_csv(path, parse_dates=["cutoff", "ds"])
    frame = compute()
    cache.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


def grid_name(key: str, config: object, protocol: Mapping, levels: Sequence[int]) -> str:
    """Cache name of one model's grid backtest: its key and a hash of everything it depends on."""
    text = json.dumps([config, {k: str(v) for k, v in protocol.items()}, list(levels)], default=str)
    return f"{key}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class StudyResult:
    """What the page shows: every variant's scores, the models' own gaps, and the rule's choice."""

    table: pd.DataFrame
    own: pd.DataFrame  # the models' own coverage gaps (no recalibration), by model and year
    chosen: pd.Series
    origins: dict[int, list]
    grid: dict


def run_study(
    models: Mapping[str, Mapping],
    make,
    history: pd.DataFrame,
    protocols: Mapping[int, Mapping],
    levels: Sequence[int],
    horizons: Sequence[int],
    season_length: int,
    cache: Path,
    progress=print,
) -> StudyResult:
    """Backtest each of ``models`` on the grid (cached), score every variant, apply the rule.

    ``history`` must end with the last development year: nothing later is read.
    """
    first = min(pd.Timestamp(p["first_cutoff"]) for p in protocols.values())
    origins = development_origins(protocols, first)
    last = max(o for year in origins.values() for o in year)
    horizon = max(int(p["horizon"]) for p in protocols.values())
    protocol = grid_origins(first, last, horizon)
    grids = {}
    for key, config in models.items():
        name = grid_name(key, config, protocol, levels)
        grids[key] = cached_grid(
            cache,
            name,
            lambda config=config: grid_forecasts(make(config), history, protocol, levels, season_length),
        )
        progress(f"recalibration study: {key} grid ({protocol['n_origins']} origins) ready")
    table = study(grids, origins, levels, horizons)
    own = coverage_gaps(grids, origins, None, levels, horizons)
    own = own.groupby(["model", "year"])["gap"].max().unstack("year")
    return StudyResult(table, own, choose(table), origins, protocol)
