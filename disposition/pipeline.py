"""The remote-closure training job: data -> model -> calibration -> safety threshold -> report -> registry.

Windows of the split (``calls.split``: temporal by default; random, stratified by the target, or
by whole groups for files without dates) and what each is for:

- training (earliest calls): tuning by cross-validation (time-ordered, stratified or grouped, as the
  split), then the final fit;
- calibration (next): probability calibration and the safety-limited threshold;
- test (latest, untouched by any choice): every reported metric, subgroups, the oracle and
  baseline comparisons, and the promotion decision.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from disposition.candidate import choose_classifier, family, fit_candidate
from disposition.config_checks import check_config
from disposition.data import CallSpec, check_windows, prepare_calls, split_windows
from disposition.evaluation import (
    eligible_auc,
    evaluate_window,
    oracle_comparison,
    safety_settings,
)
from disposition.features import add_time_features
from disposition.model_card import RunSummary, render_model_card, render_report
from disposition.model_choice import choice_markdown
from disposition.reasons import agreement
from disposition.report import reliability_figure, subgroup_labels, subgroup_table
from disposition.report_sections import ReportSections, add_sections, column_section
from disposition.run_logging import TrainResult, log_and_register
from disposition.safety import excluded_by_rules
from disposition.scorer import RemoteClosureScorer
from disposition.threshold import Plan
from disposition.withheld import level_controls
from forecasting.io import read_table
from mlops.console import stage
from mlops.gate import probability_problems, refuse
from mlops.staging import staged_outputs
from mlops.tracking import dataset_fingerprint


def _reason_agreement(scorer: RemoteClosureScorer, calls: pd.DataFrame, n: int, seed: int) -> dict | None:
    if scorer.reason_table is None or len(calls) == 0:
        return None
    sample = calls.iloc[np.random.default_rng(seed).permutation(len(calls))[:n]]
    encoded = scorer.model.encode(scorer.model_frame(sample))
    return agreement(scorer.model.contributions(encoded), scorer.reason_table.lookup(encoded), scorer.top_k)


def train(cfg: DictConfig, output_dir: Path) -> TrainResult:
    """Run the remote-closure job described by ``cfg``; write report, card and plots to ``output_dir``."""
    check_config(cfg)  # every config value, before any file is read
    started = time.perf_counter()
    timings: dict[str, float] = {}
    spec = CallSpec.from_config(OmegaConf.to_container(cfg.calls, resolve=True))
    source = str(cfg.calls.path)
    # The column summary (and any leakage warning) is printed before any column is refused.
    calls = prepare_calls(read_table(source, cfg.calls.get("read"), "calls.read"), spec, source, show=print)
    sections = ReportSections(warnings=list(calls.warnings))
    sections.add("Columns", column_section(calls.columns))
    train_mask, cal_mask, test_mask, bounds = split_windows(
        calls, OmegaConf.to_container(cfg.split, resolve=True), int(cfg.seed)
    )
    safety = safety_settings(cfg.safety, int(test_mask.sum()) / max(int(cal_mask.sum()), 1))
    windows = {"training": train_mask, "calibration": cal_mask, "test": test_mask}
    check_windows(calls.y, windows)
    frame = add_time_features(calls.frame, spec.date_column, calls.features.time_features)
    timings["time_data_s"] = time.perf_counter() - started

    with stage(f"model choice: {cfg.classifier.name}"):
        chosen = choose_classifier(cfg, calls, frame, windows)  # classifier=auto: by cross-validation
    if chosen.choice is not None:
        sections.add("Model choice", choice_markdown(chosen.choice, chosen.fold_text))
        timings["time_model_choice_s"] = chosen.seconds
    with stage(f"training: {chosen.chosen.name} on {int(train_mask.sum()):,} calls"):
        candidate = fit_candidate(
            chosen.chosen,
            cfg,
            calls,
            frame,
            windows,
            safety,
            tuned=chosen.tuned.get(chosen.chosen_family),
            planning=chosen.planning,  # out-of-fold probabilities plan the threshold's walk
            max_rows=chosen.chosen.get("max_rows"),  # classifier/logistic.yaml caps its final fit
        )
    timings["time_fit_s"] = candidate.seconds
    scorer = candidate.scorer
    # Each configured subgroup level gets its own threshold by the same walk within its calls, or
    # is withheld when that walk rejects nothing (disposition/level_thresholds.py); served too.
    cal_calls = calls.frame.loc[cal_mask].reset_index(drop=True)
    cal_unsafe = calls.y[cal_mask] == 0
    subgroup_args = (spec.subgroups, list(cfg.report.age_bands), safety)
    plan_rows = candidate.plan.positions if candidate.plan is not None else np.flatnonzero(train_mask)
    plan_calls = calls.frame.iloc[plan_rows].reset_index(drop=True)
    scorer.withheld = level_controls(
        cal_calls,
        scorer.probabilities(cal_calls),
        cal_unsafe,
        calls.rules,
        scorer.threshold,
        *subgroup_args,
        candidate.plan,
        plan_calls,
    )

    # Test window: scored through the same object that will serve, from the raw request columns.
    test_calls = calls.frame.loc[test_mask].reset_index(drop=True)
    y_test = calls.y[test_mask]
    p_test = scorer.probabilities(test_calls)
    # The gate before anything is written or registered: what it would serve must be probabilities.
    refuse("the model's probabilities on the test window", probability_problems(p_test))
    excluded_test, _ = excluded_by_rules(test_calls, calls.rules)
    eligible_test = ~excluded_test & ~scorer.withheld_mask(test_calls)
    thresholds_test = scorer.call_thresholds(test_calls)  # the overall one, or a level's stricter one
    test = evaluate_window(
        y_test, p_test, eligible_test, thresholds_test, safety, int(cfg.report.calibration_bins)
    )
    metrics = {**test.flat("test_"), **candidate.selection.as_dict("selection_")}
    metrics["test_eligible_auc"] = eligible_auc(y_test, p_test, eligible_test)

    oracle_eval, comparison = None, None
    if calls.oracle is not None:
        oracle = calls.oracle
        excluded_cal, _ = excluded_by_rules(calls.frame.loc[cal_mask], calls.rules)
        # The oracle's walk is planned on its own probabilities of the same training calls.
        excluded_plan, _ = excluded_by_rules(plan_calls, calls.rules)
        oracle_plan = Plan(oracle[plan_rows], calls.y[plan_rows] == 0, ~excluded_plan, plan_rows)
        oracle_threshold = safety.choose(oracle[cal_mask], cal_unsafe, ~excluded_cal, oracle_plan).threshold
        # The oracle's own level thresholds, by the same walks.
        held = level_controls(
            cal_calls,
            oracle[cal_mask],
            cal_unsafe,
            calls.rules,
            oracle_threshold,
            *subgroup_args,
            oracle_plan,
            plan_calls,
        )
        oracle_eligible = ~excluded_test & ~(held.mask(test_calls) if held is not None else False)
        oracle_thresholds = (
            held.call_thresholds(test_calls, oracle_threshold) if held is not None else oracle_threshold
        )
        oracle_eval = evaluate_window(y_test, oracle[test_mask], oracle_eligible, oracle_thresholds, safety)
        comparison = oracle_comparison(
            test, oracle_eval, float(cfg.oracle_targets.auc_tolerance), float(cfg.oracle_targets.share_ratio)
        )
        metrics.update(oracle_eval.flat("oracle_test_"))
        metrics.update(comparison)

    baseline_eval = None
    if cfg.baseline_enabled and chosen.other is not None:  # with classifier=auto, the one not chosen
        with stage(f"baseline: {family(chosen.other)}"):
            base = fit_candidate(
                chosen.other,
                cfg,
                calls,
                frame,
                windows,
                safety,
                cfg.baseline_max_rows,
                tune_it=False,
                tuned=chosen.tuned.get(family(chosen.other)),
            )
        p_base = base.scorer.probabilities(test_calls)
        baseline_eval = evaluate_window(y_test, p_base, eligible_test, base.scorer.threshold, safety)
        metrics.update(baseline_eval.flat("baseline_test_"))
        timings["time_baseline_s"] = base.seconds

    recommend = eligible_test & (p_test >= thresholds_test)
    labels = subgroup_labels(test_calls, spec.subgroups, list(cfg.report.age_bands), spec.date_column)
    subgroups = subgroup_table(labels, y_test, p_test, recommend, safety, int(cfg.report.calibration_bins))
    flagged = [f"{r.group}={r.level}" for r in subgroups[subgroups["flagged"]].itertuples()]
    agreement_stats = _reason_agreement(scorer, test_calls, int(cfg.reasons.table_calls), cfg.seed + 3)
    fingerprint = dataset_fingerprint(calls.frame)
    summary = RunSummary(
        data_name=spec.name,
        fingerprint=fingerprint,
        target=_target_text(spec),
        window_sizes={name: int(mask.sum()) for name, mask in windows.items()},
        bounds=bounds,
        split=spec.split,
        split_group=spec.split_group,
        features=calls.features,
        rules=calls.rules,
        model_kind=scorer.model.kind,
        params={**OmegaConf.to_container(chosen.chosen.estimator, resolve=True), **candidate.params},
        calibration_method=scorer.calibrator.method,
        safety=safety,
        selection=candidate.selection,
        test=test,
        subgroups=subgroups,
        eligible_auc=metrics["test_eligible_auc"],
        baseline=baseline_eval,
        baseline_kind=family(chosen.other) if baseline_eval else None,
        oracle=oracle_eval,
        oracle_comparison=comparison,
        tuning=candidate.tuning,
        reason_agreement=agreement_stats,
        notes=calls.notes,
        withheld=scorer.withheld,
    )
    # Results appear in output_dir only when everything, registration included, has succeeded.
    with staged_outputs(output_dir) as staging:
        paths = _write_outputs(
            staging, summary, y_test, p_test, labels, int(cfg.report.calibration_bins), sections
        )
        if agreement_stats:
            metrics.update({f"reasons_fast_{k}": v for k, v in agreement_stats.items() if k != "calls"})
        timings["time_evaluate_s"] = time.perf_counter() - started - sum(timings.values())
        metrics.update(timings)
        result = log_and_register(
            cfg,
            calls,
            windows,
            scorer,
            summary,
            metrics,
            flagged,
            paths,
            test_calls,
            y_test,
            candidate.params,
            started,
        )
    return replace(result, output_dir=output_dir)


def _target_text(spec: CallSpec) -> str:
    rule = f"column `{spec.target_column}`" if spec.target_column else f"`{spec.target_expression}`"
    return f"{rule} = 1 means the call was (or would have been) safely closed remotely"


def _write_outputs(
    output_dir: Path,
    summary: RunSummary,
    y: np.ndarray,
    p: np.ndarray,
    labels: dict,
    bins: int,
    sections: ReportSections | None = None,
) -> dict[str, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": output_dir / "report.md",
        "card": output_dir / "model_card.md",
        "subgroups": output_dir / "subgroups.csv",
        "reliability": output_dir / "reliability.png",
    }
    paths["report"].write_text(add_sections(render_report(summary), sections))
    paths["card"].write_text(render_model_card(summary))
    summary.subgroups.to_csv(paths["subgroups"], index=False)
    by = {"age_band": labels["age_band"]} if "age_band" in labels else None
    figure = reliability_figure(y, p, by, bins)
    figure.savefig(paths["reliability"], dpi=110)
    plt.close(figure)  # repeated runs in one process (tests, sweeps) would otherwise keep every figure
    if summary.tuning is not None and len(summary.tuning):
        paths["tuning"] = output_dir / "tuning.csv"
        summary.tuning.to_csv(paths["tuning"], index=False)
    return paths
