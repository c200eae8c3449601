"""What each column of a user's call records is, before anything is trained on it.

One profile row per column: its role in the run (target, date, excluded, feature, ...), the type it
is read as, how many levels it has, its missing share, and for features how well it alone separates
the outcome. The types:

- ``numeric`` (numbers, used as numbers; ``binary`` for two values);
- ``integer-coded category``: whole numbers within 1..10 with at least 3 levels (arrival mode 1-7,
  triage level 1-5), used as a category: codes carry no distance. Counts start at 0 and stay numbers;
- ``text category``: labels with a modest number of levels;
- ``date``: text that reads as dates (only ``calls.date_column`` is used, for hour and weekday);
- ``free text``: labels with very many levels, most seen once or twice (a typed complaint);
- ``identifier``: unique or nearly unique per call, numbers or text (a record or NHS number);
- ``numbers with junk``: numbers plus a few values that are not (``??``, ``unknown``) that were not
  declared missing; using it as a category would hide the numbers, so it is refused with the values;
- ``constant``: one value (or none).

Identifiers and free text would let a model memorise patients or typing habits instead of learning
risk, and identifiers must never reach the model's input example; they are refused as features
unless allowed by name. A feature that alone separates the outcome almost perfectly (AUC >= 0.97)
is most likely recorded after the call (it leaks the outcome): a loud warning, not a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mlops.errors import ConfigError, DataValidationError
from mlops.tables import file_lines, shown

NUMERIC, BINARY, CODES, TEXT = "numeric", "binary", "integer-coded category", "text category"
DATE, FREE_TEXT, IDENTIFIER = "date", "free text", "identifier"
JUNK, CONSTANT = "numbers with junk", "constant"
REFUSED_KINDS = (IDENTIFIER, FREE_TEXT, DATE)
CATEGORY_KINDS = (CODES, TEXT)

# An identifier: at least this share of the non-missing values are distinct (and at least 20 values).
IDENTIFIER_SHARE = 0.9
# Free text: more than FREE_TEXT_LEVELS levels and either more levels than FREE_TEXT_SHARE of the
# calls or more than FREE_TEXT_SINGLETONS of the calls in a level seen once; or any text column with
# more than MAX_LEVELS levels. A symptom group has dozens of well-filled levels; a typed complaint
# (417 values in 1,300 patients) has hundreds, most seen once.
FREE_TEXT_LEVELS = 50
FREE_TEXT_SHARE = 0.1
FREE_TEXT_SINGLETONS = 0.2
MAX_LEVELS = 1000
CODE_LEVELS = (3, 10)
# A column counts as numbers with junk when at least this share of its non-missing values are numbers,
# or when its other values are at most JUNK_MARKERS distinct markers (a vital sign with '??' where it
# was not taken, 50 % of the time) beside at least 3 distinct numbers making up 20 % of the values.
JUNK_NUMBER_SHARE = 0.8
JUNK_MARKERS = 3
LEAK_AUC = 0.97
_AUC_ROWS = 200_000  # single-feature AUCs on a seeded sample of at most this many calls
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?\s*$")

REFUSED = "REFUSED"
PROFILE_COLUMNS = ("column", "role", "type", "levels", "missing", "alone_auc", "note")


def parse_numbers(values: pd.Series, decimal: str = ".") -> pd.Series:
    """Text read as numbers, the file's decimal mark understood (``36,5`` with ``decimal=','``)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    return by_level(values, lambda levels: _parse_text(levels, decimal)).astype(float)


def _parse_text(values: pd.Series, decimal: str) -> pd.Series:
    text = values.astype(str).str.strip()
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(text.where(values.notna()), errors="coerce").astype(float)


def by_level(values: pd.Series, transform: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``transform(values)`` for a value-by-value ``transform``, each distinct text value done once.

    A text column of two million calls has a few dozen levels; parsing every row as a number took
    most of the data checks' time at the 2 M-call benchmark. Only for pandas' string dtype, whose
    levels are distinct strings (an object column may hold 1 and True, which hash as one level);
    missing values stay missing. Other columns are transformed as they are.
    """
    if not isinstance(values.dtype, pd.StringDtype):
        return transform(values)
    codes, levels = pd.factorize(values, use_na_sentinel=True)
    done = transform(pd.Series(levels, dtype=values.dtype)).to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(np.append(done, np.nan)[codes], index=values.index, name=values.name)


def column_type(values: pd.Series, decimal: str = ".") -> tuple[str, str]:
    """The inferred type of one column and a short note (levels seen once, junk values, codes)."""
    present = values.dropna()
    levels = present.nunique()
    if levels <= 1:
        return CONSTANT, "a single value" if levels else "no values"
    if pd.api.types.is_datetime64_any_dtype(values):
        return DATE, ""
    if pd.api.types.is_bool_dtype(values):
        return BINARY, ""
    numbers = parse_numbers(present, decimal)
    parsed = numbers.notna()
    if parsed.all():
        return _numeric_type(numbers, levels, present)
    junk = present[~parsed].astype(str).value_counts()
    # Mostly numbers, or numbers with a marker or two ('??', 'unknown') however often it occurs.
    markers = len(junk) <= JUNK_MARKERS and numbers[parsed].nunique() >= 3 and parsed.mean() >= 0.2
    if parsed.mean() >= JUNK_NUMBER_SHARE or markers:
        listed = ", ".join(f"{value!r} x{count}" for value, count in junk.head(3).items())
        return JUNK, f"not numbers: {listed}{' ...' if len(junk) > 3 else ''}"
    text = present.astype(str)
    sample = text.sample(min(len(text), 500), random_state=0) if len(text) > 500 else text
    if sample.str.match(_DATE_LIKE).mean() >= 0.95:
        return DATE, "reads as dates"
    counts = text.value_counts()
    singletons = float(counts[counts == 1].sum()) / len(text)
    if len(present) >= 20 and levels >= IDENTIFIER_SHARE * len(present):
        return IDENTIFIER, f"{levels:,} distinct values in {len(present):,} calls"
    sparse = levels > FREE_TEXT_SHARE * len(present) or singletons > FREE_TEXT_SINGLETONS
    many = levels > FREE_TEXT_LEVELS and sparse
    if many or levels > MAX_LEVELS:
        return FREE_TEXT, f"{singletons:.0%} of calls in a level seen once"
    return TEXT, ""


def _numeric_type(numbers: pd.Series, levels: int, present: pd.Series) -> tuple[str, str]:
    whole = bool(np.all(np.isfinite(numbers)) and (numbers == np.round(numbers)).all())
    if whole and len(present) >= 20 and levels >= IDENTIFIER_SHARE * len(present):
        return IDENTIFIER, f"whole numbers, {levels:,} distinct in {len(present):,} calls"
    if levels == 2:
        return BINARY, ""
    low, high = CODE_LEVELS
    if whole and low <= levels <= high and numbers.min() >= 1 and numbers.max() <= high:
        return CODES, f"codes {numbers.min():g}-{numbers.max():g}"
    return NUMERIC, ""


def alone_auc(values: pd.Series, y: np.ndarray, kind: str, decimal: str = ".") -> float:
    """How well this column alone separates the outcome: AUC (0.5-1, direction ignored).

    Numbers are ranked as they are (missing last); labels by their smoothed share of ``y`` = 1
    (20 pseudo-calls at the overall share), so a level seen once cannot look perfect.
    """
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    if kind in (NUMERIC, BINARY) and not pd.api.types.is_bool_dtype(values):
        # Ranks (missing last): infinite values, refused later with their line, do not break this.
        numbers = parse_numbers(values, decimal)
        score = numbers.rank(method="average", na_option="bottom").to_numpy(dtype=float)
    else:
        labels = values.astype(object).where(values.notna(), "(missing)").astype(str).to_numpy()
        frame = pd.DataFrame({"level": labels, "y": y})
        stats = frame.groupby("level")["y"].agg(["sum", "count"])
        prior = y.mean()
        smoothed = (stats["sum"] + 20 * prior) / (stats["count"] + 20)
        score = smoothed.reindex(labels).to_numpy(dtype=float)
    auc = roc_auc_score(y, score)
    return float(max(auc, 1 - auc))


def profile_columns(
    frame: pd.DataFrame, y: np.ndarray, role_of: Callable[[str, str], str], decimal: str = "."
) -> pd.DataFrame:
    """One row per column of ``frame``: role, type, levels, missing share, alone AUC (features), note.

    ``role_of(column, type)`` gives each column's role in the run; features (role ``feature``) get
    the AUC they reach on their own.
    """
    rows = []
    sample = None
    if len(frame) > _AUC_ROWS:
        sample = np.sort(np.random.default_rng(0).choice(len(frame), _AUC_ROWS, replace=False))
    for column in frame.columns:
        values = frame[column]
        kind, note = column_type(values, decimal)
        role = role_of(str(column), kind)
        auc = float("nan")
        if role == "feature" and kind not in (CONSTANT, JUNK, DATE):
            part, target = (values, y) if sample is None else (values.iloc[sample], np.asarray(y)[sample])
            auc = alone_auc(part, target, kind, decimal)
        rows.append(
            {
                "column": str(column),
                "role": role,
                "type": kind,
                "levels": int(values.nunique(dropna=True)),
                "missing": float(values.isna().mean()),
                "alone_auc": auc,
                "note": note,
            }
        )
    return pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))


def inferred_role(kind: str, allowed: bool) -> str:
    """The role of a column no setting names: a feature, refused, or left out (constant)."""
    if kind == CONSTANT:
        return "left out"
    if kind == JUNK or (kind in REFUSED_KINDS and not allowed):
        return REFUSED
    return "feature"


def refuse_unusable(profile: pd.DataFrame, frame: pd.DataFrame, source: str, decimal: str = ".") -> None:
    """Refuse the columns :func:`inferred_role` refused: numbers with junk, identifiers, free text, dates.

    Raises
    ------
    DataValidationError
        A numeric column holding values that are not numbers, naming them, their lines and the fix.
    ConfigError
        Identifier, free-text or date columns, all named in one line with how to drop or allow them.
    """
    refused = profile[profile["role"] == REFUSED]
    junk = refused[refused["type"] == JUNK]
    if len(junk):
        column = junk["column"].iloc[0]
        values = frame[column]
        bad = values.index[parse_numbers(values, decimal).isna() & values.notna()]
        markers = sorted(values[bad].astype(str).str.strip().unique().tolist())
        others = [c for c in junk["column"] if c != column]
        declared = ",".join(repr(m) for m in markers[:5])
        raise DataValidationError(
            f"{source}: column {column!r} holds numbers and {len(bad)} value(s) that are not, "
            f"{', '.join(map(repr, markers[:5]))}{' ...' if len(markers) > 5 else ''} (e.g. "
            f"{shown(values[bad[0]])} at {file_lines(bad)}){f'; so do {others}' if others else ''}. If they "
            f"mean 'unknown', declare them missing with \"calls.read.na_values=[{declared}]\"; to use the "
            "column as a category instead, list the features in calls.features.categorical / "
            "calls.features.numeric"
        )
    if refused.empty:
        return
    described = "; ".join(
        f"{r.column!r} ({_what(r.type)}{': ' + r.note if r.note else ''})" for r in refused.itertuples()
    )
    names = ",".join(refused["column"])
    allowable = ",".join(refused.loc[refused["type"] != DATE, "column"])
    allow = (
        f", or use one knowingly as a category with 'calls.allow_columns=[{allowable}]' (or list the "
        "features in calls.features.categorical / calls.features.numeric)"
        if allowable
        else ""
    )
    raise ConfigError(
        f"{source}: column(s) refused as features: {described}. Leave them out with "
        f"'calls.exclude=[{names}]'{allow}; see the column summary printed above"
    )


def _what(kind: str) -> str:
    return {IDENTIFIER: "looks like an identifier", FREE_TEXT: "free text", DATE: "dates"}.get(kind, kind)


def leakage_warnings(profile: pd.DataFrame, threshold: float = LEAK_AUC) -> list[str]:
    """One warning per feature that alone separates the outcome almost perfectly."""
    used = profile[profile["role"] == "feature"]
    leaky = used[used["alone_auc"] >= threshold]
    return [
        f"feature {r.column!r} alone separates the outcome (AUC {r.alone_auc:.4f} on its own): it is "
        "probably recorded after the call and leaks the outcome. Add it to calls.exclude unless it is "
        "truly known when the call is taken"
        for r in leaky.itertuples()
    ]


def render_text(profile: pd.DataFrame) -> str:
    """The profile as an aligned plain-text table, for the console."""
    shown_frame = _display(profile)
    widths = {c: max(len(c), *(len(str(v)) for v in shown_frame[c])) for c in shown_frame.columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in shown_frame.columns)]
    lines += [
        "  ".join(str(v).ljust(widths[c]) for c, v in zip(shown_frame.columns, row, strict=True)).rstrip()
        for row in shown_frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def render_markdown(profile: pd.DataFrame) -> str:
    frame = _display(profile)
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _display(profile: pd.DataFrame) -> pd.DataFrame:
    frame = profile.copy()
    frame["missing"] = [f"{100 * v:.1f} %" for v in frame["missing"]]
    frame["alone_auc"] = ["" if np.isnan(v) else f"{v:.3f}" for v in frame["alone_auc"]]
    frame["levels"] = [f"{v:,}" for v in frame["levels"]]
    return frame.rename(columns={"alone_auc": "AUC alone"})
