"""Everything that turns a frame of calls into a recommendation, in one object that saves to a folder.

The same :class:`RemoteClosureScorer` scores the held-out calls during training and answers
requests inside the registered MLflow model, so what was evaluated is exactly what serves.

Order of work for a batch: check the request, derive time features, encode, raw score, calibrate,
apply the hard rules, compare with the threshold, then explain the calls the rules did not settle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from disposition.calibration import ScoreCalibrator
from disposition.features import add_time_features
from disposition.model import LinearModel, TreeModel, load_model
from disposition.reasons import ContributionTable, display_values, top_reasons
from disposition.safety import HardRule, excluded_by_rules
from disposition.text_rules import rule_from_state
from disposition.withheld import WithheldLevels
from mlops.errors import DataValidationError

OUTPUT_COLUMNS = ("p_safe_remote", "recommend_remote", "threshold", "reasons")
REASON_MODES = ("auto", "exact", "fast", "none")
_FORMAT = 1  # bump when the saved layout changes
_EXPLAIN_BLOCK = 65_536  # calls whose contributions are computed at once


class RequestError(DataValidationError):
    """A batch of calls the model cannot score (missing columns, values of the wrong type, impossible values).

    Messages name columns, row positions in the batch and the model's own settings, never a value
    from the request (which would be a patient's): the HTTP server (``mlops.serve``) passes them to
    clients only because ``client_safe`` says so.
    """

    client_safe = True


# Bounds no real call can break, whatever the training data held.
PHYSICAL_LIMITS = {"age": (0.0, 120.0)}
EARLIEST_CALL = pd.Timestamp("1900-01-01")
# A call this long before the first training call is outside anything the model has seen.
DATE_MARGIN = pd.DateOffset(years=5)


def _rows(positions: np.ndarray) -> str:
    """``rows 0, 3, 7`` (first five): positions in the batch, never values."""
    shown = ", ".join(str(int(p)) for p in positions[:5])
    return f"row{'s' if len(positions) > 1 else ''} {shown}{', ...' if len(positions) > 5 else ''}"


def _distinct_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """For each row, which distinct combination of ``columns`` it holds, and each combination's first row."""
    key = np.zeros(len(frame), dtype=np.int64)
    for name in columns:
        codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
        # Missing (-1) is a value of its own; renumbering after each column keeps the key small.
        key = pd.factorize(key * (len(uniques) + 1) + (codes + 1))[0].astype(np.int64)
    which, combos = pd.factorize(key)
    first = np.empty(len(combos), dtype=np.int64)
    first[which[::-1]] = np.arange(len(frame) - 1, -1, -1)  # the last write of each is its first row
    return which, first


def training_ranges(frame: pd.DataFrame, features: FeatureSpec) -> dict[str, list]:
    """Minimum and maximum of each numeric request column (and the date column) in ``frame``.

    Saved with the scorer so that requests can be checked for values no training call came near.
    """
    ranges: dict[str, list] = {}
    for name in features.numeric:
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        if len(values):
            ranges[name] = [float(values.min()), float(values.max())]
    date = features.date_column
    if date and date in frame.columns:
        values = pd.to_datetime(frame[date], errors="coerce").dropna()
        if len(values):
            ranges[date] = [values.min().isoformat(), values.max().isoformat()]
    return ranges


@dataclass
class FeatureSpec:
    """Which request columns the model reads and how.

    ``time_features`` (hour, day of week) are derived from ``date_column``; they are model features
    but not request columns.
    """

    categorical: list[str]
    numeric: list[str]
    date_column: str | None = None
    time_features: list[str] = field(default_factory=list)

    @property
    def model_numeric(self) -> list[str]:
        return [*self.numeric, *self.time_features]

    @property
    def names(self) -> list[str]:
        return [*self.categorical, *self.model_numeric]


def served_thresholds(thresholds: np.ndarray) -> pd.arrays.FloatingArray:
    """Per-call thresholds as served: missing (``pd.NA``) where a call has none (``inf``: withheld, or
    no threshold met the safety bound).

    ``inf`` is no JSON number: MLflow's scoring server would write it as ``Infinity``, which strict
    parsers (JavaScript's ``JSON.parse``, Jackson) refuse, so a dispatch system could not read the
    answer. A missing value of pandas' nullable float type becomes JSON ``null`` (MLflow turns the
    frame into records with :meth:`pandas.DataFrame.to_dict`), a Parquet null in batch scoring,
    and stays a float column for Python callers.
    """
    return pd.array(np.where(np.isfinite(thresholds), thresholds, np.nan), dtype="Float64")


class RemoteClosureScorer:
    """A fitted model, its calibrator, the safety threshold, hard rules and the reason machinery.

    Parameters
    ----------
    model : TreeModel or LinearModel
    calibrator : ScoreCalibrator
    threshold : float
        Calls with calibrated probability at or above it are recommended (unless a rule excludes
        them); ``inf`` when no threshold met the safety bound.
    rules : sequence of HardRule
    features : FeatureSpec
    reason_table : ContributionTable, optional
        Lookup for fast reasons (tree models); without it every batch gets exact reasons.
    top_k : int
        Features named in each reason.
    exact_max_rows : int
        In ``"auto"`` mode, batches up to this size get exact reasons, larger ones fast reasons.
    ranges : dict, optional
        ``column -> [min, max]`` in the training calls (:func:`training_ranges`), for
        :meth:`check_plausible`; without it only physical limits are checked.
    """

    def __init__(
        self,
        model: TreeModel | LinearModel,
        calibrator: ScoreCalibrator,
        threshold: float,
        rules: Sequence[HardRule],
        features: FeatureSpec,
        reason_table: ContributionTable | None = None,
        top_k: int = 3,
        exact_max_rows: int = 10_000,
        ranges: dict[str, list] | None = None,
        withheld: WithheldLevels | None = None,
    ):
        self.model = model
        self.calibrator = calibrator
        self.threshold = float(threshold)
        self.rules = list(rules)
        self.features = features
        self.reason_table = reason_table
        self.top_k = int(top_k)
        self.exact_max_rows = int(exact_max_rows)
        self.ranges = dict(ranges or {})
        # Subgroup levels too small to show the limit on calibration: never recommended.
        self.withheld = withheld

    @property
    def required_columns(self) -> list[str]:
        """Request columns, in order: features, the date column if time features need it, rule columns."""
        columns = [*self.features.categorical, *self.features.numeric]
        if self.features.time_features and self.features.date_column:
            columns.append(self.features.date_column)
        columns += [rule.column for rule in self.rules]
        if self.withheld is not None:
            columns += self.withheld.required_columns
        return list(dict.fromkeys(columns))

    def call_thresholds(self, calls: pd.DataFrame) -> np.ndarray:
        """Each call's threshold: the overall one, or the stricter of it and the call's subgroup
        levels' own thresholds (``inf`` in a withheld level); see :mod:`disposition.level_thresholds`."""
        if self.withheld is None:
            return np.full(len(calls), self.threshold)
        # A call's levels come from its own subgroup columns: a million calls hold a few hundred
        # distinct (age, sex, category) combinations, each labelled and looked up once.
        columns = [c for c in dict.fromkeys(self.withheld.columns.values()) if c in calls.columns]
        if not columns or any(calls[c].dtype == object for c in columns):
            # Object columns may hold values that are equal but read differently (1 and True).
            return self.withheld.call_thresholds(calls, self.threshold)
        which, first = _distinct_rows(calls, columns)
        return self.withheld.call_thresholds(calls.iloc[first], self.threshold)[which]

    def withheld_mask(self, calls: pd.DataFrame) -> np.ndarray:
        """True for calls in a subgroup level too small to show the limit (never recommended)."""
        if self.withheld is None:
            return np.zeros(len(calls), dtype=bool)
        return self.withheld.mask(calls)

    def check_request(self, calls: pd.DataFrame) -> None:
        """Raise :class:`RequestError` naming what is wrong; missing values and unseen categories are fine."""
        if not isinstance(calls, pd.DataFrame):
            raise RequestError(f"expected a table of calls (DataFrame), got {type(calls).__name__}")
        missing = [c for c in self.required_columns if c not in calls.columns]
        if missing:
            raise RequestError(f"request lacks column(s) {missing}; the model needs {self.required_columns}")
        if calls.empty:
            raise RequestError("request has no calls: send at least one row (as the other models require)")
        for name in self.features.numeric:
            column = calls[name]
            if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                continue
            parsed = pd.to_numeric(column, errors="coerce")
            bad = parsed.isna() & column.notna()
            if bad.any():
                raise RequestError(
                    f"column {name!r} must hold numbers (or null); {int(bad.sum())} value(s) are not "
                    f"({_rows(np.flatnonzero(bad.to_numpy()))})"
                )
        if self.features.time_features and self.features.date_column:
            column = calls[self.features.date_column]
            if not pd.api.types.is_datetime64_any_dtype(column):
                parsed = pd.to_datetime(column, errors="coerce", format="mixed")
                bad = parsed.isna() & column.notna()
                if bad.any():
                    raise RequestError(
                        f"column {self.features.date_column!r} must hold date-times (e.g. 2024-01-31 14:05); "
                        f"{int(bad.sum())} value(s) are not ({_rows(np.flatnonzero(bad.to_numpy()))})"
                    )

    def check_plausible(self, calls: pd.DataFrame, now: pd.Timestamp | None = None) -> None:
        """Refuse values no real call can have, naming the column and the rows (never the values).

        Numbers must be finite; a column that was never negative in training must not be negative
        here, nor more than twice its training span above its training maximum; ``age`` within
        :data:`PHYSICAL_LIMITS`; the call date-time from 1900, at most five years before the first
        training call, and not after ``now`` (default: the clock) plus a day. Missing values pass.
        """
        self.check_request(calls)
        for name in self.features.numeric:
            values = pd.to_numeric(calls[name], errors="coerce").to_numpy(dtype=float)
            problems = [("infinite", np.isinf(values))]
            low, high = PHYSICAL_LIMITS.get(name, (-np.inf, np.inf))
            if name in self.ranges:
                seen_low, seen_high = self.ranges[name]
                span = max(seen_high - seen_low, 1.0)
                low = max(low, 0.0) if seen_low >= 0 else low
                high = min(high, seen_high + 2 * span)
            finite = np.isfinite(values)
            problems.append((f"below {low:g}", finite & (values < low)))
            problems.append((f"above {high:g}", finite & (values > high)))
            for what, bad in problems:
                if bad.any():
                    raise RequestError(
                        f"column {name!r} holds {int(bad.sum())} impossible value(s) ({what}) in "
                        f"{_rows(np.flatnonzero(bad))}: the model takes {name} from {low:g} to {high:g}"
                    )
        date = self.features.date_column
        if self.features.time_features and date:
            times = pd.to_datetime(calls[date], errors="coerce", format="mixed")
            if getattr(times.dt, "tz", None) is not None:
                times = times.dt.tz_convert(None)
            first = EARLIEST_CALL
            if date in self.ranges:
                first = max(first, pd.Timestamp(self.ranges[date][0]) - DATE_MARGIN)
            # A day ahead of the server's clock: a caller's local time may be ahead of the server's zone.
            last = (now if now is not None else pd.Timestamp.now()) + pd.Timedelta(days=1)
            bad = ((times < first) | (times > last)).fillna(False).to_numpy(dtype=bool)
            if bad.any():
                raise RequestError(
                    f"column {date!r} holds {int(bad.sum())} date-time(s) outside {first:%Y-%m-%d} to "
                    f"{last:%Y-%m-%d} in {_rows(np.flatnonzero(bad))}: a call cannot be in the future or "
                    "long before the calls the model was trained on"
                )

    def model_frame(self, calls: pd.DataFrame) -> pd.DataFrame:
        """The request with time features added: the columns the encoder reads."""
        return add_time_features(calls, self.features.date_column, self.features.time_features)

    def probabilities(self, calls: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of safe remote closure for each call (no rules, no reasons)."""
        self.check_request(calls)
        encoded = self.model.encode(self.model_frame(calls))
        return self.calibrator.predict(self.model.raw_score(encoded))

    def predict(self, calls: pd.DataFrame, reasons: str = "auto") -> pd.DataFrame:
        """Score a batch of calls.

        Returns
        -------
        DataFrame
            ``p_safe_remote`` (float), ``recommend_remote`` (bool), ``threshold`` (nullable
            ``Float64``, the call's own: the overall one or its subgroup level's stricter one; missing,
            ``pd.NA``, when the call has none: in a withheld level, or no threshold met the safety
            bound, and then ``recommend_remote`` is false) and ``reasons`` (str; empty when
            ``reasons="none"``), indexed like ``calls``.
        """
        if reasons not in REASON_MODES:
            raise RequestError(f"param reasons must be one of {REASON_MODES}")
        self.check_request(calls)
        frame = self.model_frame(calls)
        encoded = self.model.encode(frame)
        p = self.calibrator.predict(self.model.raw_score(encoded))
        excluded, which_rule = excluded_by_rules(frame, self.rules)
        thresholds = self.call_thresholds(frame)
        recommend = ~excluded & (p >= thresholds)
        text = np.full(len(frame), "", dtype=object)
        if reasons != "none":
            for i, rule in enumerate(self.rules):
                text[which_rule == i] = f"never remote by rule: {rule.describe()}"
            open_rows = np.flatnonzero(~excluded)
            if len(open_rows):
                text[open_rows] = self._explain(frame, encoded, open_rows, reasons)
        return pd.DataFrame(
            {
                "p_safe_remote": p,
                "recommend_remote": recommend,
                "threshold": served_thresholds(thresholds),
                "reasons": text,
            },
            index=calls.index,
        )

    def _explain(self, frame: pd.DataFrame, encoded: np.ndarray, rows: np.ndarray, mode: str) -> np.ndarray:
        """Reasons for the calls at positions ``rows`` of ``frame`` (and ``encoded``)."""
        use_table = self.reason_table is not None and (
            mode == "fast" or (mode == "auto" and len(rows) > self.exact_max_rows)
        )
        names = self.features.names
        # Contributions block by block: a million calls' encoded rows (and the linear model's
        # temporaries) are never copied at once. Each call's contributions are its own row's.
        contributions = np.empty((len(rows), len(names)))
        for start in range(0, len(rows), _EXPLAIN_BLOCK):
            block = encoded[rows[start : start + _EXPLAIN_BLOCK]]
            found = self.reason_table.lookup(block) if use_table else self.model.contributions(block)
            contributions[start : start + _EXPLAIN_BLOCK] = found
        # Values shown are labelled on the whole batch (no copy of the frame) and then picked.
        labelled = display_values(frame, names, self.features.categorical)
        shown = [(codes[rows], texts) for codes, texts in labelled]
        return top_reasons(contributions, shown, names, self.top_k)

    def save(self, folder: Path) -> Path:
        """Write the scorer as ``scorer.json`` plus the model's own files; returns ``folder``."""
        folder = Path(folder)
        self.model.save(folder)
        state = {
            "format": _FORMAT,
            "model_kind": self.model.kind,
            "calibrator": self.calibrator.to_dict(),
            "threshold": self.threshold if np.isfinite(self.threshold) else "inf",
            "rules": [{"column": r.column, "values": list(r.values)} for r in self.rules],
            "features": vars(self.features),
            "reason_table": self.reason_table.to_dict() if self.reason_table is not None else None,
            "top_k": self.top_k,
            "exact_max_rows": self.exact_max_rows,
            "ranges": self.ranges,
            "withheld": self.withheld.to_dict() if self.withheld is not None else None,
        }
        (folder / "scorer.json").write_text(json.dumps(state))
        return folder

    @classmethod
    def load(cls, folder: Path) -> RemoteClosureScorer:
        folder = Path(folder)
        state = json.loads((folder / "scorer.json").read_text())
        if state["format"] != _FORMAT:
            raise ValueError(f"scorer saved in format {state['format']}, this code reads {_FORMAT}")
        table = state["reason_table"]
        return cls(
            model=load_model(folder, state["model_kind"]),
            calibrator=ScoreCalibrator.from_dict(state["calibrator"]),
            threshold=float(state["threshold"]),
            rules=[rule_from_state(r["column"], r["values"]) for r in state["rules"]],
            features=FeatureSpec(**state["features"]),
            reason_table=ContributionTable.from_dict(table) if table is not None else None,
            top_k=state["top_k"],
            exact_max_rows=state["exact_max_rows"],
            ranges=state.get("ranges"),  # absent in scorers saved before ranges were kept
            withheld=WithheldLevels.from_dict(state["withheld"]) if state.get("withheld") else None,
        )
