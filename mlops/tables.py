"""One reader for every user table (daily counts, call records, populations), and strict dates.

Every app reads its files through :func:`read_table`, with the same options from config (the
``read:`` block of each data group, documented once in the README under "Reading your files"):

``sep``, ``decimal``, ``encoding``, ``na_values``, ``thousands``
    As in :func:`pandas.read_csv`; CSV only (Parquet stores types and ignores them).
``dtypes``
    Per-column type overrides ``{column: str|int|float|category}``, e.g. to keep area codes with
    leading zeros as text. Applies to Parquet too.
``date_format``
    Dates are ISO (``YYYY-MM-DD``, optionally with a time) unless this names their format, e.g.
    ``%d/%m/%Y``. Dates are never guessed: :func:`parse_dates` refuses any other spelling (and
    so a file whose dates read both day first and month first), with examples, line numbers and
    the format to set; :func:`check_date_range` refuses dates before 1900 or in the future.

Problems are one :class:`~mlops.errors.DataValidationError` (the file) or
:class:`~mlops.errors.ConfigError` (the options) naming the file, the line and the key to set; the
apps' validators phrase theirs with :func:`file_lines`, :func:`shown`, :func:`separator_hint`,
:func:`near_misses` and :func:`number_hint`. Line numbers count the header as line 1, so the first
row is line 2 (in Parquet: row number + 1); :func:`read_table` keeps them as the frame's index.
"""

from __future__ import annotations

import codecs
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.errors import ConfigError, DataValidationError

DTYPES = ("str", "int", "float", "category")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")
# Formats a CSV reader would otherwise report as an encoding problem, by their first bytes.
_NOT_TEXT = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zip archive",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"\x1f\x8b": "a gzip-compressed file",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
}
_DECOMPRESSION_ERRORS = (zlib.error, EOFError, zipfile.BadZipFile, lzma.LZMAError, tarfile.TarError)
_SEPARATORS = {",": "','", ";": "';'", "\t": "tab ('\\t')", "|": "'|'"}
_EXAMPLES = 3
# Strict ISO 8601 date, optionally with a time (space or T, minutes or seconds, fractions).
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
# A time-zone suffix: the local time as written is what calls and days are counted in.
_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
# Day and month in some order, then the year: 03/04/2023, 3.4.23, 03-04-2023 10:15.
_DMY_OR_MDY = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T](\d{1,2}:\d{2}(:\d{2})?))?$")
# Year first but not ISO: 2023/04/03.
_YMD_OTHER = re.compile(r"^(\d{4})([/.])(\d{1,2})\2(\d{1,2})(?:[ T](\d{1,2}:\d{2}(:\d{2})?))?$")
# Digits only: 20230403 (often a date stored as a number).
_YMD_COMPACT = re.compile(r"^(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$")
# Days before this, or after tomorrow, are typos in ambulance data (a year 1819, a year 2107).
EARLIEST_DATE = pd.Timestamp("1900-01-01")
_CLOCK_SLACK = pd.Timedelta(days=1)  # a time-zone difference, not a call from the future


@dataclass(frozen=True)
class ReadOptions:
    """How to read one kind of table; ``setting`` is the config key they came from, for messages.

    Parameters
    ----------
    sep, decimal, encoding, na_values, thousands
        As in :func:`pandas.read_csv` (CSV only).
    dtypes : mapping of str to str
        Column -> one of ``str``, ``int``, ``float``, ``category``.
    date_format : str, optional
        ``strftime`` format of the dates (e.g. ``%d/%m/%Y``); None means ISO.
    setting : str
        Where the options live in config, e.g. ``data.read``.
    """

    sep: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    na_values: tuple[str, ...] = ()
    thousands: str | None = None
    dtypes: Mapping[str, str] = field(default_factory=dict)
    date_format: str | None = None
    setting: str = "read"

    @classmethod
    def from_config(cls, options: Mapping | ReadOptions | None, setting: str = "read") -> ReadOptions:
        """Check options from config (a mapping, e.g. ``cfg.data.read``) and build them.

        Raises
        ------
        ConfigError
            For an unknown key or an impossible value, naming ``<setting>.<key>``.
        """
        if isinstance(options, ReadOptions):
            return options
        given = dict(options or {})
        known = {"sep", "decimal", "encoding", "na_values", "thousands", "dtypes", "date_format"}
        unknown = sorted(set(map(str, given)) - known)
        if unknown:
            raise ConfigError(f"{setting}: unknown key(s) {unknown}; the reader takes {sorted(known)}")
        sep = _character(given.get("sep", ","), f"{setting}.sep", allow_long=True)
        decimal = _character(given.get("decimal", "."), f"{setting}.decimal")
        thousands = given.get("thousands")
        thousands = None if thousands in (None, "") else _character(thousands, f"{setting}.thousands")
        if decimal == thousands or decimal == sep:
            raise ConfigError(
                f"{setting}.decimal={decimal!r} is also the separator or thousands mark; they must differ"
            )
        encoding = str(given.get("encoding") or "utf-8")
        try:
            codecs.lookup(encoding)
        except LookupError as error:
            raise ConfigError(
                f"{setting}.encoding={encoding!r} is not an encoding Python knows; use e.g. utf-8, "
                "utf-8-sig, latin-1 or cp1252"
            ) from error
        na_values = given.get("na_values") or ()
        if isinstance(na_values, (str, int, float)):
            na_values = [na_values]
        dtypes = {str(k): str(v) for k, v in dict(given.get("dtypes") or {}).items()}
        wrong = {k: v for k, v in dtypes.items() if v not in DTYPES}
        if wrong:
            column, kind = next(iter(wrong.items()))
            raise ConfigError(f"{setting}.dtypes.{column}={kind!r} is not a type; use one of {list(DTYPES)}")
        date_format = given.get("date_format")
        if date_format in ("", None):
            date_format = None
        elif "%" not in str(date_format):
            raise ConfigError(
                f"{setting}.date_format={date_format!r} is not a strftime format; write e.g. %d/%m/%Y "
                "(day/month/year) or %m/%d/%Y, or null for ISO dates (YYYY-MM-DD)"
            )
        return cls(
            sep=sep,
            decimal=decimal,
            encoding=encoding,
            na_values=tuple(str(v) for v in na_values),
            thousands=thousands,
            dtypes=dtypes,
            date_format=None if date_format is None else str(date_format),
            setting=setting,
        )


def _character(value, key: str, allow_long: bool = False) -> str:
    """A separator or mark; ``\\t`` and ``tab`` as typed on a command line mean a tab."""
    text = str(value) if value is not None else ""
    text = "\t" if text in ("\\t", "tab", "TAB") else text
    if not text or (len(text) != 1 and not allow_long):
        raise ConfigError(f"{key}={value!r} must be a single character, e.g. ',' or ';'")
    return text


def shown(value) -> str:
    """A file's value as a user would recognise it: ``'abc'``, ``-40``, ``inf`` (not ``np.int64(-40)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


_GROUPED = re.compile(r"^-?\d{1,3}(?:([,.' ])\d{3})+(?:[.,]\d+)?$")


def number_hint(value, setting: str = "read") -> str:
    """``. If '3,239,447' ... set <setting>.thousands`` when a text value is a number with digit groups."""
    grouped = _GROUPED.match(value.strip()) if isinstance(value, str) else None
    if not grouped:
        return ""
    mark = grouped.group(1)
    decimal = f" \"{setting}.decimal=','\"" if mark == "." else ""
    override = f"\"{setting}.thousands='{mark}'\""
    return f". If {value!r} is a number written with a thousands mark, set {override}{decimal}"


def file_lines(index: pd.Index) -> str:
    """Describe rows by their line in the file (the header is line 1): ``line(s) 2, 5 and 3 more``."""
    lines = [str(int(i) + 2) for i in index[:_EXAMPLES]]
    more = f" and {len(index) - _EXAMPLES} more" if len(index) > _EXAMPLES else ""
    return f"line(s) {', '.join(lines)}{more}"


def read_table(
    path: str | os.PathLike, options: Mapping | ReadOptions | None = None, setting: str | None = None
) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file with the configured options.

    Parameters
    ----------
    path : path-like
        ``.parquet`` / ``.pq`` are Parquet, anything else CSV.
    options : mapping or ReadOptions, optional
        The ``read:`` block of the data's config; None reads comma-separated UTF-8 with ISO dates.
    setting : str, optional
        Config key of the options (e.g. ``data.read``), named in messages; overrides the one in
        ``options``.

    Returns
    -------
    DataFrame
        Indexed so that the row labelled ``i`` is line ``i + 2`` of the file (blank lines are
        dropped, their numbers skipped).

    Raises
    ------
    DataValidationError
        The path is missing or a directory, the file cannot be read or decoded, it has no rows,
        its separator looks wrong, or a type override does not fit its values.
    """
    options = ReadOptions.from_config(options, setting or "read")
    if setting and options.setting != setting:
        options = ReadOptions(**{**options.__dict__, "setting": setting})
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataValidationError(
            f"{path}: is a directory, not a file; give the path of the CSV or Parquet file"
        )
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found (check the path, relative to {Path.cwd()})")
    suffixes = "".join(path.suffixes).lower()
    parquet = suffixes.endswith(".parquet") or suffixes.endswith(".pq")
    if not parquet:
        _check_text(path, suffixes)
    frame = _read_parquet(path) if parquet else _read_csv(path, options)
    if frame.columns.empty:
        raise DataValidationError(f"{path}: the file is empty (no header and no rows)")
    if not parquet:
        _check_separator(frame, path, options)
    # Blank lines were read as empty rows so that row i stays line i + 2; now they go.
    frame = frame.reset_index(drop=True).dropna(how="all")
    if frame.empty:
        raise DataValidationError(
            f"{path}: no rows, only a header ({', '.join(map(str, frame.columns[:8]))}); the file needs data"
        )
    return _apply_dtypes(frame, options, path, parquet)


def _check_text(path: Path, suffixes: str) -> None:
    """Refuse a workbook, archive or other binary file named like a CSV, saying what it is."""
    if suffixes.endswith(_COMPRESSED):
        return  # pandas decompresses these by their suffix
    with open(path, "rb") as stream:
        start = stream.read(8)
    for magic, what in _NOT_TEXT.items():
        if start.startswith(magic):
            fix = {b"PAR1": "name it .parquet", b"\x1f\x8b": "name it .csv.gz"}.get(magic, "save it as CSV")
            raise DataValidationError(
                f"{path}: this is {what}, not a CSV file; {fix} (the toolkit reads CSV, optionally "
                "compressed as .csv.gz, .csv.zip, ..., or Parquet)"
            )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError, ImportError) as error:
        raise DataValidationError(f"{path}: not a readable Parquet file ({error})") from error


def _read_csv(path: Path, options: ReadOptions) -> pd.DataFrame:
    # Columns with a type override are read as text and converted here, so that a value that does
    # not fit is reported with its line rather than as a pandas error.
    try:
        return pd.read_csv(
            path,
            sep=options.sep,
            decimal=options.decimal,
            thousands=options.thousands,
            encoding=options.encoding,
            na_values=list(options.na_values) or None,
            dtype=dict.fromkeys(options.dtypes, str) or None,
            engine="c" if len(options.sep) == 1 else "python",
            skip_blank_lines=False,
        )
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.end]
        raise DataValidationError(
            f"{path}: cannot be decoded as {options.encoding} (byte {byte!r} "
            f"at position {error.start}); set {options.setting}.encoding to the file's encoding, e.g. "
            f"{options.setting}.encoding=latin-1 or cp1252 (Excel on Windows)"
        ) from error
    except pd.errors.EmptyDataError as error:
        raise DataValidationError(f"{path}: the file is empty (no header and no rows)") from error
    except pd.errors.ParserError as error:
        hint = _separator_hint(_header_line(path, options.encoding), options)
        raise DataValidationError(
            f"{path}: not a readable CSV file ({str(error).strip()}){hint or ''}"
        ) from error
    except _DECOMPRESSION_ERRORS as error:
        raise DataValidationError(
            f"{path}: cannot be decompressed ({error}); the compressed file looks corrupt or is not what its "
            "name says: compress it again or give the plain CSV"
        ) from error
    except (ValueError, OSError) as error:
        raise DataValidationError(f"{path}: not a readable CSV file ({error})") from error


def _header_line(path: Path, encoding: str) -> str:
    try:
        with pd.io.common.get_handle(
            path, "r", encoding=encoding, compression="infer", errors="replace"
        ) as h:
            return h.handle.readline().rstrip("\r\n")
    except (OSError, ValueError):
        return ""


def _separator_hint(header: str, options: ReadOptions) -> str | None:
    """`` (the header holds ';': ...)`` when the header looks separated by another character."""
    found = [mark for mark in _SEPARATORS if mark != options.sep and mark in header]
    if not found:
        return None
    mark = found[0]
    # Spelled as typed in a shell: Hydra needs ';' and ',' quoted, and the shell needs the quotes kept.
    override = f"{options.setting}.sep=tab" if mark == "\t" else f"\"{options.setting}.sep='{mark}'\""
    return (
        f"; the header {header[:80]!r} holds {_SEPARATORS[mark]}: if that separates the columns, set "
        f"{override} (now {_SEPARATORS.get(options.sep, repr(options.sep))})"
    )


def separator_hint(frame: pd.DataFrame, setting: str = "read", sep: str = ",") -> str:
    """A sentence to add to a 'missing column' message when the column names hold another separator."""
    options = ReadOptions(sep=sep, setting=setting)
    hint = _separator_hint(" ".join(map(str, frame.columns)), options)
    return "" if hint is None else f" The separator may be wrong{hint}."


def near_misses(missing, columns) -> str:
    """`` The file has 'DS ' ...`` when a missing name differs from a column only in case or spaces."""
    normal = {" ".join(str(c).split()).casefold(): str(c) for c in columns}
    found = [
        (name, normal[key]) for name in missing if (key := " ".join(str(name).split()).casefold()) in normal
    ]
    if not found:
        return ""
    pairs = ", ".join(f"{have!r} for {name!r}" for name, have in found)
    return f" The file has {pairs}: names must match exactly, case and spaces included."


def _check_separator(frame: pd.DataFrame, path: Path, options: ReadOptions) -> None:
    if len(frame.columns) != 1:
        return
    hint = _separator_hint(str(frame.columns[0]), options)
    if hint:
        raise DataValidationError(f"{path}: only one column was read, so the separator looks wrong{hint}")


def _apply_dtypes(frame: pd.DataFrame, options: ReadOptions, path: Path, parquet: bool) -> pd.DataFrame:
    absent = [column for column in options.dtypes if column not in frame.columns]
    if absent:
        raise ConfigError(
            f"{options.setting}.dtypes names column(s) {absent} that {path} lacks; it has "
            f"{list(frame.columns)[:12]}"
        )
    for column, kind in options.dtypes.items():
        values = frame[column]
        if kind == "str":
            frame[column] = values.where(values.isna(), values.astype(str))
        elif kind == "category":
            frame[column] = values.astype("category")
        else:
            frame[column] = _numbers(values, kind, column, path, options, parquet)
    return frame


def _numbers(
    values: pd.Series, kind: str, column: str, path: Path, options: ReadOptions, parquet: bool
) -> pd.Series:
    text = values.astype(str).str.strip()
    if not parquet:  # text read as it is: apply the thousands and decimal marks here
        if options.thousands:
            text = text.str.replace(options.thousands, "", regex=False)
        if options.decimal != ".":
            text = text.str.replace(options.decimal, ".", regex=False)
    numbers = pd.to_numeric(text.where(values.notna()), errors="coerce")
    bad = values.index[numbers.isna() & values.notna()]
    if kind == "int" and not len(bad):
        bad = values.index[numbers.notna() & (numbers != np.round(numbers))]
    if len(bad):
        raise DataValidationError(
            f"{path}: {len(bad)} value(s) in column {column!r} are not {'whole ' if kind == 'int' else ''}"
            f"numbers as {options.setting}.dtypes.{column}={kind} asks, e.g. {shown(values[bad[0]])} at "
            f"{file_lines(bad)}; fix them or change the type override"
        )
    if kind == "int":
        return numbers.astype("int64") if numbers.notna().all() else numbers.astype("Int64")
    return numbers.astype(float)


def parse_dates(
    values: pd.Series,
    date_format: str | None = None,
    *,
    what: str = "date column",
    source: str = "data",
    setting: str = "read",
) -> pd.Series:
    """Dates from text: ISO unless ``date_format`` is given; never guessed.

    Missing values stay NaT (the caller decides whether they are allowed); any other value that is
    not a date in the expected form is refused.

    Parameters
    ----------
    values : Series
        Text, or datetimes already (Parquet), returned as they are.
    date_format : str, optional
        ``strftime`` format, e.g. ``%d/%m/%Y``.
    what, source, setting
        Names for messages: the column (``"date column 'ds'"``), the file, and the config key of
        the read options (``data.read``).

    Raises
    ------
    DataValidationError
        With examples, their file lines and the ``<setting>.date_format`` to set.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    present = values.notna()
    text = values.astype(str).str.strip().where(present)
    key = f"{setting}.date_format"
    if date_format is not None:
        dates = pd.to_datetime(text, format=date_format, errors="coerce")
        bad = values.index[dates.isna() & present]
        if len(bad):
            raise DataValidationError(
                f"{source}: {len(bad)} value(s) in {what} do not match {_override(key, date_format)}, e.g. "
                f"{shown(values[bad[0]])} at {file_lines(bad)}; fix those values or the format"
            )
        return dates
    iso = text.str.match(_ISO).fillna(False).astype(bool)
    if (present & ~iso).any():
        raise DataValidationError(_not_iso_message(values, text, present & ~iso, what, source, key))
    dates = pd.to_datetime(text.str.replace(_ZONE, "", regex=True), format="ISO8601", errors="coerce")
    bad = values.index[dates.isna() & present]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) in {what} are not dates (no such day), e.g. "
            f"{shown(values[bad[0]])} at {file_lines(bad)}; fix them in the file"
        )
    return dates


def _not_iso_message(
    values: pd.Series, text: pd.Series, other: pd.Series, what: str, source: str, key: str
) -> str:
    """Explain dates that are not ISO: which format they seem to have, or why it cannot be told."""
    rows = values.index[other]
    example = f"{shown(values[rows[0]])} at {file_lines(rows)}"
    sample = text[other]
    dmy = sample.str.extract(_DMY_OR_MDY)
    ymd = sample.str.extract(_YMD_OTHER)
    if dmy[0].notna().all():
        first, second = dmy[0].astype(int), dmy[2].astype(int)
        sep, year = dmy[1].iloc[0], "%Y" if dmy[3].str.len().eq(4).all() else "%y"
        time = _time_format(dmy[4])
        day_first, month_first = f"%d{sep}%m{sep}{year}{time}", f"%m{sep}%d{sep}{year}{time}"
        if (first > 12).any() and (second > 12).any():
            a, b = rows[(first > 12).to_numpy()][0], rows[(second > 12).to_numpy()][0]
            return (
                f"{source}: {what} mixes day-first ({shown(values[a])}, {file_lines(pd.Index([a]))}) and "
                f"month-first ({shown(values[b])}, {file_lines(pd.Index([b]))}) dates; write them all one "
                f"way (ISO YYYY-MM-DD is safest) or set {key} to their format"
            )
        for evidence, order, fmt in ((first, "day", day_first), (second, "month", month_first)):
            if (evidence > 12).any():
                row = rows[(evidence > 12).to_numpy()][0]
                return (
                    f"{source}: {len(rows)} value(s) in {what} are not ISO dates (YYYY-MM-DD), e.g. "
                    f"{example}; they read {order} first ({shown(values[row])} at line {int(row) + 2} has no "
                    f"month {int(evidence[row])}): set {_override(key, fmt)}"
                )
        return (
            f"{source}: {what} holds dates such as {example} that are ambiguous: every one reads as "
            f"day/month and as month/day; the toolkit does not guess, set {_override(key, day_first)} (day "
            f"first) or {_override(key, month_first)} (month first), or write ISO dates (YYYY-MM-DD)"
        )
    if sample.str.match(_YMD_COMPACT).fillna(False).all():
        return (
            f"{source}: {len(rows)} value(s) in {what} are not ISO dates (YYYY-MM-DD), e.g. {example}; if "
            f"they are dates written as YYYYMMDD, set {key}=%Y%m%d"
        )
    if ymd[0].notna().all():
        sep = ymd[1].iloc[0]
        return (
            f"{source}: {len(rows)} value(s) in {what} are not ISO dates (YYYY-MM-DD), e.g. {example}; "
            f"set {_override(key, f'%Y{sep}%m{sep}%d{_time_format(ymd[4])}')}"
        )
    return (
        f"{source}: {len(rows)} value(s) in {what} are not dates in ISO form (YYYY-MM-DD, optionally "
        f"with a time), e.g. {example}; write ISO dates, or give their format with {key} "
        f"(e.g. {key}=%d/%m/%Y)"
    )


def _override(key: str, value: str) -> str:
    """``key=value`` as typed in a shell: quoted for Hydra and the shell when it holds a space."""
    return f"\"{key}='{value}'\"" if any(c in value for c in " ,;'") else f"{key}={value}"


def _time_format(times: pd.Series) -> str:
    if times.isna().all():
        return ""
    return " %H:%M:%S" if times.dropna().str.count(":").max() == 2 else " %H:%M"


def check_date_range(
    dates: pd.Series,
    values: pd.Series,
    *,
    what: str,
    source: str,
    earliest: pd.Timestamp = EARLIEST_DATE,
    earliest_key: str | None = None,
    fix: str = "fix the dates in the file",
) -> None:
    """Refuse dates before ``earliest`` or after tomorrow, naming an example and its file lines.

    ``values`` are the file's own spellings, shown in the message; ``earliest_key`` names the
    setting that moves the lower bound, if there is one.
    """
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    latest = pd.Timestamp.now().normalize() + 2 * _CLOCK_SLACK
    setting = f" ({earliest_key})" if earliest_key else ""
    for bad, why in (
        (values.index[(dates < earliest).to_numpy()], f"before {earliest:%Y-%m-%d}{setting}"),
        (values.index[(dates >= latest).to_numpy()], "in the future"),
    ):
        if len(bad):
            raise DataValidationError(
                f"{source}: {len(bad)} value(s) in {what} are dated {why}, e.g. {shown(values[bad[0]])} "
                f"at {file_lines(bad)}; {fix}"
            )
