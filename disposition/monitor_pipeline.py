"""Monitoring job: outcomes file -> sequential test -> report, MLflow run, model-version tags.

``monitor(cfg, output_dir)`` is what ``disposition-monitor`` runs (conf/monitor.yaml). The test
itself lives in :mod:`disposition.monitoring`; this module reads and checks the user's file, finds
the limit (the registered model version's own ``safety_limit`` unless overridden), writes the
report and records the outcome on the model version (tags ``monitoring.status`` = ``ok`` or
``breach``, ``monitoring.checked_at``, ``monitoring.summary``, ``monitoring.run_id``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from disposition.monitoring import monitor_under_triage, synthetic_closed_call_outcomes
from mlops.errors import ConfigError, DataValidationError
from mlops.tables import check_date_range, file_lines, near_misses, parse_dates, read_table, shown
from mlops.tracking import flatten_params, prepare_experiment, resolve_store, run_name, tracked_run

SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class MonitorResult:
    """What one monitoring run found and where it went."""

    breach: bool
    streams: pd.DataFrame
    limit: float
    limit_source: str
    model_version: str | None  # "name vN" when a version was tagged
    run_id: str
    output_dir: Path


def write_synthetic(settings, path: Path) -> Path:
    """Write the demo stream described by ``cfg.synthetic`` to ``path`` (CSV, no true rates)."""
    frame = synthetic_closed_call_outcomes(**OmegaConf.to_container(settings, resolve=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.drop(columns="true_rate").to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def read_outcomes(cfg: DictConfig, output_dir: Path) -> tuple[pd.DataFrame, str]:
    """The outcomes, checked and sorted by time; and where they came from."""
    spec = cfg.outcomes
    path = str(spec.path)
    if path == SYNTHETIC:
        path = str(write_synthetic(cfg.synthetic, output_dir / "closed_call_outcomes.csv"))
    frame = read_table(path, spec.read, setting="outcomes.read")
    columns = {
        "outcomes.id_column": spec.id_column,
        "outcomes.time_column": spec.time_column,
        "outcomes.outcome_column": spec.outcome_column,
    }
    subgroups = list(spec.subgroups or [])
    wanted = [str(v) for v in columns.values()] + [str(s) for s in subgroups]
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        keys = [k for k, v in columns.items() if v in missing] + (
            ["outcomes.subgroups"] if set(missing) & set(map(str, subgroups)) else []
        )
        raise DataValidationError(
            f"{path}: column(s) {missing} not found (set {', '.join(keys)}); the file has "
            f"{list(map(str, frame.columns))[:12]}.{near_misses(missing, frame.columns)}"
        )
    outcome = _outcomes(frame[spec.outcome_column], path, str(spec.outcome_column))
    times = parse_dates(
        frame[spec.time_column],
        spec.read.get("date_format"),
        what=f"time column {spec.time_column!r}",
        source=path,
        setting="outcomes.read",
    )
    absent = frame.index[times.isna().to_numpy()]
    if len(absent):
        raise DataValidationError(
            f"{path}: {len(absent)} call(s) have no time in {spec.time_column!r}, at {file_lines(absent)}; "
            "every closed call needs the time it was closed"
        )
    check_date_range(times, frame[spec.time_column], what=f"time column {spec.time_column!r}", source=path)
    ids = frame[spec.id_column]
    repeated = frame.index[ids.duplicated(keep="first").to_numpy()]
    if len(repeated):
        raise DataValidationError(
            f"{path}: {len(repeated)} call id(s) in {spec.id_column!r} appear more than once, e.g. "
            f"{shown(ids[repeated[0]])} at {file_lines(repeated)}; give one row per closed call "
            "(1 if any bad outcome followed it)"
        )
    out = frame[[spec.id_column, *subgroups]].copy()
    out["time"], out["outcome"] = times, outcome
    if spec.get("since"):
        since = pd.Timestamp(str(spec.since))
        out = out[out["time"] >= since]
        if out.empty:
            raise ConfigError(f"outcomes.since={spec.since}: no call in {path} was closed on or after it")
    # Stable sort: calls closed at the same time stay in file order.
    return out.sort_values("time", kind="mergesort"), path


def _outcomes(values: pd.Series, path: str, column: str) -> pd.Series:
    """0/1 outcomes (booleans and 0.0/1.0 accepted); anything else refused with its lines."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(int)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.index[~numbers.isin([0, 1]).to_numpy()]
    if len(bad):
        first = values[bad[0]]
        what = "blank" if pd.isna(first) else shown(first)
        raise DataValidationError(
            f"{path}: {len(bad)} value(s) in outcome column {column!r} are not 0 or 1, e.g. {what} at "
            f"{file_lines(bad)}; 1 = bad outcome (under-triage), 0 = none; leave out calls whose "
            "follow-up is not known yet"
        )
    return numbers.astype(int)


def find_limit(cfg: DictConfig, client: MlflowClient) -> tuple[float, str, object | None]:
    """The limit to test, where it came from, and the model version to tag (or None)."""
    version = _model_version(client, cfg.monitor)
    stored = _stored_limit(client, version) if version is not None else None
    given = cfg.monitor.limit
    if given is not None:
        limit, source = float(given), "monitor.limit"
        if stored is not None and not np.isclose(stored, limit):
            source += f" (the model version was trained under {stored:g})"
    elif stored is not None:
        limit, source = stored, f"safety_limit of {cfg.monitor.model_name} v{version.version}"
    else:
        limit = float(cfg.monitor.default_limit)
        where = (
            f"{cfg.monitor.model_name} v{version.version} stores no safety limit"
            if version is not None
            else f"no registered model {cfg.monitor.model_name}@{cfg.monitor.model_version} in this store"
        )
        source = f"monitor.default_limit ({where})"
    if not 0 < limit < 1:
        raise ConfigError(f"monitor.limit={limit:g}: the under-triage limit must be a share between 0 and 1")
    alpha = float(cfg.monitor.alpha)
    if not 0 < alpha < 1:
        raise ConfigError(f"monitor.alpha={alpha:g}: the false-alarm probability must be between 0 and 1")
    return limit, source, version


def _model_version(client: MlflowClient, spec) -> object | None:
    if spec.get("model_version") in (None, ""):
        return None
    name, which = str(spec.model_name), str(spec.model_version)
    try:
        if which.isdigit():
            return client.get_model_version(name, which)
        return client.get_model_version_by_alias(name, which)
    except MlflowException:
        return None


def _stored_limit(client: MlflowClient, version) -> float | None:
    """``safety_limit`` from the version's MLmodel metadata, else its run's ``safety.limit`` param."""
    try:
        metadata = mlflow.models.get_model_info(f"models:/{version.name}/{version.version}").metadata
        if metadata and metadata.get("safety_limit") is not None:
            return float(metadata["safety_limit"])
    except (MlflowException, OSError, ValueError, KeyError):
        pass
    try:
        params = client.get_run(version.run_id).data.params if version.run_id else {}
        return float(params["safety.limit"]) if "safety.limit" in params else None
    except (MlflowException, ValueError):
        return None


def monitor(cfg: DictConfig, output_dir: Path) -> MonitorResult:
    """Run one monitoring check; see the module docstring."""
    started = time.time()  # the run's start, so its duration in the UI is the whole check's
    output_dir.mkdir(parents=True, exist_ok=True)
    outcomes, source = read_outcomes(cfg, output_dir)
    store = resolve_store(cfg.tracking)
    experiment_id = prepare_experiment(store, cfg.experiment_name)
    client = MlflowClient(store.tracking_uri)
    limit, limit_source, version = find_limit(cfg, client)
    alpha = float(cfg.monitor.alpha)
    subgroups = [str(s) for s in (cfg.outcomes.subgroups or [])]
    streams = monitor_under_triage(outcomes, "outcome", limit, alpha, subgroups)
    alarm_rows = streams["alarm_row"]
    streams["alarm_time"] = [outcomes.loc[r, "time"] if pd.notna(r) else pd.NaT for r in alarm_rows]
    streams = streams.drop(columns="alarm_row")
    breach = bool(streams["alarm"].any())
    paths = _write_report(streams, outcomes, source, limit, limit_source, alpha, version, output_dir)
    overall = streams.iloc[0]
    # e.g. disposition-monitor-v3-closed-call-outcomes: the version checked and the outcomes file
    checked = f"v{version.version}" if version is not None else None
    title = run_name("disposition-monitor", checked, Path(source).stem)
    with tracked_run(experiment_id, title, started) as run:
        mlflow.log_params(flatten_params(OmegaConf.to_container(cfg, resolve=True)))
        mlflow.log_params({"limit_used": limit, "limit_source": limit_source[:500]})
        mlflow.log_param("n_streams", len(streams))
        metrics = {
            "calls": overall.calls,
            "bad_outcomes": overall.bad,
            "under_triage": overall.rate,
            "lower_bound": overall.lower_bound,
            "upper_bound": overall.upper_bound,
            "alarms": int(streams["alarm"].sum()),
            "breach": int(breach),
        }
        if overall.alarm:
            metrics["alarm_call"] = overall.alarm_call
        for row in streams.iloc[1:].itertuples():
            key = _metric_key(row.stream)
            metrics |= {f"{key}.under_triage": row.rate, f"{key}.lower_bound": row.lower_bound}
            metrics[f"{key}.alarm"] = int(row.alarm)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(float(v))})
        mlflow.set_tags({"monitoring.status": "breach" if breach else "ok", "limit_source": limit_source})
        if version is not None:
            mlflow.set_tag("model_version", f"{version.name}/{version.version}")
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="report")
        run_id = run.info.run_id
    tagged = None
    if version is not None:
        _tag_version(client, version, streams, breach, limit, run_id)
        tagged = f"{version.name} v{version.version}"
    return MonitorResult(breach, streams, limit, limit_source, tagged, run_id, output_dir)


def _metric_key(stream: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./ -]", "_", stream)


def _tag_version(
    client: MlflowClient, version, streams: pd.DataFrame, breach: bool, limit: float, run_id: str
) -> None:
    overall = streams.iloc[0]
    alarms = streams.loc[streams["alarm"], "stream"].tolist()
    summary = (
        f"{overall.calls:,} closed calls, {overall.bad:,} bad outcomes ({100 * overall.rate:.2f} %), "
        f"limit {100 * limit:g} %; breach in: {', '.join(alarms) if alarms else 'none'}"
    )
    tags = {
        "monitoring.status": "breach" if breach else "ok",
        "monitoring.checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "monitoring.summary": summary,
        "monitoring.calls": str(int(overall.calls)),
        "monitoring.bad_outcomes": str(int(overall.bad)),
        "monitoring.run_id": run_id,
    }
    for key, value in tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)


def _percent(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{100 * value:.2f} %"


def _write_report(streams, outcomes, source, limit, limit_source, alpha, version, output_dir) -> list[Path]:
    csv_path = output_dir / "monitoring_streams.csv"
    streams.to_csv(csv_path, index=False)
    breach = bool(streams["alarm"].any())
    first, last = outcomes["time"].min(), outcomes["time"].max()
    lines = [
        "# Under-triage monitoring",
        "",
        f"- Outcomes: `{source}`, {len(outcomes):,} remotely closed calls from {first:%Y-%m-%d %H:%M} to "
        f"{last:%Y-%m-%d %H:%M}",
        f"- Limit: {100 * limit:g} % ({limit_source})",
        f"- Model version: {f'{version.name} v{version.version}' if version is not None else 'none tagged'}",
        f"- **Status: {'BREACH' if breach else 'no breach'}**",
        "",
        f"Anytime-valid sequential test of H0: under-triage <= {100 * limit:g} % (mixture likelihood-ratio "
        f"martingale; Ville's inequality). The probability of any false alarm, in any of the "
        f"{len(streams)} streams, over the whole stream however often it is checked, is at most "
        f"{alpha:g}: each stream is tested at {alpha:g}/{len(streams)} = {alpha / len(streams):.4f} "
        "(Bonferroni). The bounds are one-sided confidence sequences at that level, at the latest call. "
        "An alarm means the evidence that the rate exceeded the limit reached 1/level at the call shown; "
        "it stays raised.",
        "",
        "| stream | calls | bad | rate | lower bound | upper bound | alarm at call | alarm time |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in streams.itertuples():
        at = f"{int(row.alarm_call):,}" if row.alarm else "-"
        when = f"{row.alarm_time:%Y-%m-%d %H:%M}" if row.alarm else "-"
        lines.append(
            f"| {row.stream} | {row.calls:,} | {row.bad:,} | {_percent(row.rate)} | "
            f"{_percent(row.lower_bound)} | {_percent(row.upper_bound)} | {at} | {when} |"
        )
    md_path = output_dir / "monitoring.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [md_path, csv_path]
