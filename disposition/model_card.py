"""The evaluation report and the model card, as markdown, from one summary of a training run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from disposition.evaluation import SafetySettings, WindowEvaluation, nothing_recommended_text
from disposition.report import markdown_table, percent
from disposition.safety import ClosureResult, HardRule
from disposition.scorer import FeatureSpec
from disposition.threshold import calls_to_certify, required_calls
from disposition.withheld import WithheldLevels


@dataclass
class RunSummary:
    """Everything the report and the card say about one training run (aggregates only, no rows)."""

    data_name: str
    fingerprint: str
    target: str
    window_sizes: dict[str, int]
    bounds: dict[str, str]
    features: FeatureSpec
    rules: list[HardRule]
    model_kind: str
    params: dict
    calibration_method: str
    safety: SafetySettings
    selection: ClosureResult
    test: WindowEvaluation
    subgroups: pd.DataFrame
    eligible_auc: float
    baseline: WindowEvaluation | None = None
    baseline_kind: str | None = None
    oracle: WindowEvaluation | None = None
    oracle_comparison: dict[str, float] | None = None
    tuning: pd.DataFrame | None = None
    reason_agreement: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    split: str = "temporal"
    split_group: str | None = None
    withheld: WithheldLevels | None = None


def split_text(summary: RunSummary) -> str:
    """Which split made the windows and, for random or grouped ones, what they cannot show."""
    sizes = ", ".join(f"{k} {v:,}" for k, v in summary.window_sizes.items())
    if summary.split == "temporal":
        return (
            f"Temporal split: training before {summary.bounds['calibration_start']}, calibration and "
            f"threshold from then until {summary.bounds['test_start']}, test after; calls {sizes}."
        )
    if summary.split == "random":
        how = "Random split, stratified by the outcome (seeded)"
    else:
        how = (
            f"Grouped split by `{summary.split_group}`: no group in two windows (groups "
            f"{summary.bounds.get('groups', '')}; test groups {summary.bounds.get('test_groups', '')})"
        )
    return (
        f"{how}; calls {sizes}. **What it cannot show**: the windows come from the same period, so "
        "nothing here measures drift over time (later calls, changed case mix or practice); "
        "re-validate on later calls before relying on the bounds"
        + (" and on services like the held-out groups." if summary.split == "group" else ".")
    )


def _window_span(summary: RunSummary, window: str) -> str:
    if summary.split != "temporal":
        return f"the {window} window"
    if window == "calibration":
        start, end = summary.bounds["calibration_start"], summary.bounds["test_start"]
        return f"the calibration window ({start} to {end})"
    return f"the later test window (from {summary.bounds['test_start']}"


def _rule_text(rules: list[HardRule]) -> str:
    return "; ".join(r.describe() for r in rules) if rules else "none configured"


def _headline(summary: RunSummary) -> pd.DataFrame:
    rows = [("model (" + summary.model_kind + ")", summary.test)]
    if summary.baseline is not None:
        rows.append((f"baseline ({summary.baseline_kind})", summary.baseline))
    if summary.oracle is not None:
        rows.append(("oracle (true probability)", summary.oracle))
    return pd.DataFrame(
        [
            {
                "score": name,
                "AUC": ev.metrics["auc"],
                "AUPRC safe": ev.metrics["auprc"],
                "AUPRC not safe": ev.metrics["auprc_unsafe"],
                "ECE": ev.metrics["ece"],
                "Brier": ev.metrics["brier"],
                "deployed share": ev.deployed.share,
                "deployed under-triage": ev.deployed.under_triage,
                "deployed bound": ev.deployed.upper_bound,
                "share at limit": ev.at_limit.share,
            }
            for name, ev in rows
        ]
    )


def _subgroup_section(summary: RunSummary) -> str:
    if summary.subgroups.empty:
        return (
            "No subgroups were evaluated: no subgroup column is configured (`calls.subgroups`) and the "
            "calls carry no time of day (no date column, or dates only), "
            "so nothing here says how the model does in any group."
        )
    s = summary.safety
    table = summary.subgroups.drop(columns=["flag_reason"]).copy()
    table["flagged"] = table["flagged"].map({True: "FLAG", False: ""})
    table["higher_than_rest"] = table["higher_than_rest"].map({True: "HIGHER", False: ""})
    groups = summary.subgroups
    flagged = groups[groups["flagged"]]
    higher = groups[groups["higher_than_rest"]]
    served = groups[groups["recommended"] > 0]
    per_level = summary.withheld is not None and bool(summary.withheld.thresholds)
    joint = summary.withheld is not None and summary.withheld.common_threshold is not None
    guarantee = (
        "The configured groupings' levels (`calls.subgroups`) that the plan serves share ONE threshold, "
        "chosen by the joint walk (`safety.subgroup_control=joint`, disposition/joint_threshold.py): "
        "**P(the overall or any served level's true under-triage above it > "
        f"{percent(s.limit)}) <= {s.delta:g}, family-wise** over the overall rate and every served level "
        "together, for exactly the calls served; the other levels are withheld before testing, from "
        "the training window's planning data and counts. Time of day is not covered."
        if joint
        else "Each level of the configured groupings (`calls.subgroups`) has its own threshold, by the same "
        "Learn-then-Test walk within its calibration calls, or is withheld when that walk rejects no "
        "candidate; a call is recommended only above the overall threshold and its levels' own. **The "
        f"guarantee is per level** (for each level, P(its under-triage above its own threshold > "
        f"{percent(s.limit)}) <= {s.delta:g}), not family-wise over levels; the calls served in a level "
        "are a subset of those (other groupings' thresholds and withheld levels remove some), which the "
        "proof does not cover, so every level's test-window bound is shown."
        if per_level
        else "The threshold is chosen for all calls together: **no per-subgroup guarantee is made**."
    )
    lines = [
        f"Bounds are one-sided Clopper-Pearson at {1 - s.delta:.0%} on the test window, against the "
        f"{percent(s.limit)} limit. {guarantee} A level shows the limit on held-out calls only if its own "
        f"bound is within it, which needs at least {required_calls(s.limit, s.delta):,} recommended calls "
        "with none unsafe (more when some are unsafe).",
        "",
        markdown_table(table),
        "",
        f"{len(served)} of {len(groups)} subgroup levels received recommendations; "
        f"{len(served) - len(flagged)} of them show a test-window bound within the limit, "
        f"{len(flagged)} do not.",
    ]
    held = summary.withheld.describe() if summary.withheld is not None else []
    if held:
        lines.append(
            "\n**Withheld levels** (no recommendations, in this report and when served): "
            + (
                "the planning data predicted that serving them would make the joint test fail (too few "
                "calls, or too high a rate, for a test of them to pass); the calls each would need:\n"
                if joint
                else "their own walk rejected no candidate (too few calls, or too many unsafe among them); "
                "the calls each would need:\n"
                if per_level
                else "fewer recommended calibration calls than the limit needs at all, so their own rate "
                "could not be shown:\n"
            )
        )
        lines += [f"- {text}" for text in held]
    if len(flagged):
        lines.append("\n**Flagged subgroups** (test-window bound above the limit):\n")
        lines += [f"- {r.group} = {r.level}: {r.flag_reason}" for r in flagged.itertuples()]
    if len(higher):
        lines.append(
            "\n**Under-triage significantly higher than the rest of their grouping** (one-sided Fisher "
            f"exact test, Holm-corrected over all levels, at {s.delta:g}):\n"
        )
        lines += [
            f"- {r.group} = {r.level}: {percent(r.under_triage)} "
            f"({r.unsafe_recommended} of {r.recommended}), corrected p = {r.higher_p_holm:.3g}"
            for r in higher.itertuples()
        ]
    else:
        lines.append(
            "\nNo level's under-triage is significantly higher than the rest of its grouping (one-sided "
            f"Fisher exact test, Holm-corrected, at {s.delta:g}); with few recommended calls in a level "
            "this test has little power."
        )
    overall = summary.test.deployed
    if overall.upper_bound > s.limit:
        lines.append(
            f"\nThe whole test window's bound ({percent(overall.upper_bound)}) is itself above the "
            "limit, so subgroups at average risk cannot show a bound below it either."
        )
    return "\n".join(lines)


def _calls_text(rate: float, s: SafetySettings) -> str:
    needed = calls_to_certify(rate, s.limit, s.delta)
    return f"about {needed:,}" if needed is not None else "more than 10,000,000"


def _safety_lines(summary: RunSummary) -> list[str]:
    s, sel, dep = summary.safety, summary.selection, summary.test.deployed
    limit = percent(s.limit)
    against = (
        f"the rate at which a test window {s.test_scale:.2f} times the calibration window's size would "
        f"confirm the limit with probability {s.confirm_power:g} (below {limit}, so a stricter threshold)"
        if s.confirm_power is not None
        else f"the limit {limit}"
    )
    start_text = (
        f"plan_start={s.plan_start}: planned on the training window's out-of-fold probabilities when "
        "classifier=auto chose the model by cross-validation, by counts otherwise"
        if s.plan_start is not None
        else "by counts only"
    )
    lines = [
        f"- **Guarantee**: the threshold is chosen by Learn-then-Test fixed-sequence testing, so the "
        f"probability that its true under-triage on new calls exceeds {limit} is at most "
        f"delta = {s.delta:g}. **Assumption**: new calls are exchangeable with the calibration calls "
        "(same case mix, practice and outcome recording); drift breaks it, hence the test window and "
        "`disposition-monitor`.",
        f"- How: candidate thresholds from strictest to loosest (one per 1/{s.grid} of eligible calls), "
        f"each tested with the exact binomial p-value of 'under-triage among recommended calls > rate' "
        f"against {against}; the last rejected before the first acceptance is deployed.",
        f"- Sample size: showing {limit} at delta {s.delta:g} needs at least {sel.needed_calls:,} "
        f"recommended calibration calls with no unsafe outcome; the calibration window has "
        f"{sel.n_calls:,} calls, "
        f"{sel.eligible_calls:,} open to recommendation (they could at best support a limit of "
        f"{percent(sel.supported_limit)}); the walk started at {sel.start_calls:,} recommended calls "
        f"({start_text}) "
        f"and rejected {sel.rejected} of {sel.tested} candidates tested. That minimum assumes no unsafe "
        f"call at all: a threshold whose true under-triage is half the limit needs "
        f"{_calls_text(s.limit / 2, s)} recommended calls for a window to show the bound with probability "
        f"0.95 ({_calls_text(0.75 * s.limit, s)} at three quarters of it; exact binomial), in the "
        "calibration window to be chosen and again in a test window to be confirmed, and every subgroup "
        "level with a threshold of its own needs that many of its own.",
    ]
    if sel.n_recommended:
        lines.append(
            f"- Threshold: P(safe remote closure) >= {sel.threshold:.4f}, chosen on "
            f"{_window_span(summary, 'calibration')}: it recommends {percent(sel.share)} of calls with "
            f"under-triage {percent(sel.under_triage)} ({sel.n_unsafe} of {sel.n_recommended}), p-value "
            f"{sel.p_value:.3g}, calibration-window bound {percent(sel.upper_bound)}."
        )
    else:
        lines.append(f"- No threshold: {nothing_recommended_text(sel, s)}. Nothing is recommended.")
    held = summary.withheld
    if held is not None and held.common_threshold is not None:
        j = held.joint
        starts = ", ".join(f"{int(n):,} calls at {w:g} x delta" for n, w in j.get("starts", []))
        level_rate = s.subgroup_confirm_power if s.subgroup_confirm_power is not None else "none: the limit"
        served = (
            f"P(safe remote closure) >= {held.common_threshold:.4f} for every call in a served level, "
            f"recommending {j.get('recommended', 0):,} of its {j.get('served_calls', 0):,} served "
            f"calibration calls ({j.get('unsafe', 0)} unsafe); intersection-union p-value "
            f"{j.get('p_value', float('nan')):.3g}, set by {j.get('weakest') or 'none'}"
            if np.isfinite(held.common_threshold)
            else "none: no walk rejected its first candidate, so nothing is recommended"
        )
        lines.append(
            "- **Served threshold (joint walk, replaces the overall one above)**: "
            f"{served}. Walks from planned starts "
            f"({starts or 'none: the plan predicted no test could pass'}), {j.get('rejected', 0)} of "
            f"{j.get('tested', 0)} candidates tested rejected; each tested in the overall (against "
            f"{against}) and in every served level (confirm power {level_rate})."
        )
    lines += [
        f"- On {_window_span(summary, 'test')}"
        ", not used for any choice"
        f"{')' if summary.split == 'temporal' else ''}: "
        f"{percent(dep.share)} recommended, under-triage {percent(dep.under_triage)} "
        f"({dep.n_unsafe} of {dep.n_recommended}), test-window bound {percent(dep.upper_bound)} "
        f"(one-sided Clopper-Pearson at {1 - s.delta:.0%}; "
        f"{'within' if dep.upper_bound <= s.limit else 'ABOVE'} the {limit} limit; "
        f"{'two-sided' if s.two_sided else 'one-sided'} {s.confidence:.0%} CI upper end "
        f"{percent(dep.ci_upper)}).",
        f"- Hard rules, never recommended whatever the score: {_rule_text(summary.rules)} "
        "(and calls with the rule column missing).",
    ]
    return lines


def _oracle_lines(summary: RunSummary) -> list[str]:
    if summary.oracle_comparison is None:
        return ["No oracle column: comparison with true probabilities is only possible on synthetic data."]
    o = summary.oracle_comparison
    return [
        f"- AUC gap to the oracle: {o['auc_gap_to_oracle']:.4f} (target <= 0.01: "
        f"{'met' if o['target_auc_met'] else 'MISSED'}).",
        f"- Closure share at the limit on the test window: model {percent(summary.test.at_limit.share)}, "
        f"oracle {percent(o['oracle_at_limit_share'])}, ratio {o['at_limit_share_ratio_to_oracle']:.3f} "
        f"(target >= 0.95: {'met' if o['target_share_met'] else 'MISSED'}).",
        f"- Deployed thresholds (each chosen on the calibration window): ratio "
        f"{o['deployed_share_ratio_to_oracle']:.3f}.",
    ]


def render_report(summary: RunSummary) -> str:
    """The evaluation report: headline metrics, safety, oracle targets, subgroups, tuning."""
    parts = [
        f"# Remote-closure model: evaluation on held-out calls ({summary.data_name})",
        "",
        f"Data fingerprint `{summary.fingerprint}`; windows (calls): "
        + ", ".join(f"{k} {v:,}" for k, v in summary.window_sizes.items())
        + f". Target: {summary.target}.",
        "",
        split_text(summary),
        "",
        "## Headline (test window)",
        "",
        markdown_table(_headline(summary)),
        "",
        f"AUC among calls no hard rule excludes: {summary.eligible_auc:.4f}.",
        "",
        "## Safety threshold",
        "",
        *_safety_lines(summary),
        f"- Calibration ({summary.calibration_method}) is fitted on the calibration window too; the "
        "calibrated probability is strictly increasing in the raw score (fitted on the training window "
        "only), so the walk recommends exactly the calls a walk on the raw score would and the guarantee "
        "is unchanged (model card, Model).",
        "",
        "## Against the oracle",
        "",
        *_oracle_lines(summary),
        "",
        "## Subgroups (test window)",
        "",
        _subgroup_section(summary),
        "",
        "Calibration by subgroup: see `reliability.png`.",
    ]
    if summary.tuning is not None and len(summary.tuning):
        folds = {"temporal": "time-ordered", "random": "stratified", "group": "grouped, stratified"}
        kind = folds.get(summary.split, summary.split)
        parts += ["", f"## Tuning ({kind} cross-validation on the training window)", ""]
        if summary.split != "temporal":
            parts += [
                "Cross-validated estimates: the score of every fold (fold0, fold1, ...) for each "
                "candidate, mean and spread across folds.",
                "",
            ]
        parts.append(markdown_table(summary.tuning.head(10)))
    if summary.reason_agreement:
        parts += ["", "## Reasons", "", _reason_text(summary.reason_agreement)]
    if summary.notes:
        parts += ["", "## Notes", "", *[f"- {note}" for note in summary.notes]]
    return "\n".join(parts) + "\n"


def _reason_text(agreement: dict[str, float]) -> str:
    return (
        f"Fast reasons (lookup of average contributions) against exact TreeSHAP on "
        f"{int(agreement['calls']):,} held-out calls: same top feature for {percent(agreement['top1'])}, "
        f"on average {percent(agreement['top_k_overlap'])} of the named features shared."
    )


def render_model_card(summary: RunSummary) -> str:
    """The model card logged with the model: use, data, metrics, threshold, subgroups, limits."""
    flagged = summary.subgroups[summary.subgroups["flagged"]]
    features = ", ".join(summary.features.names)
    limits = [
        "Trained and evaluated on one service's historical calls: performance can drift when "
        "case mix, triage protocols or community services change; re-train and re-check the bound.",
        "Under-triage at a fixed threshold depends on the case mix, not only on calibration: as the "
        "population ages, more recommended calls sit just above the threshold and the rate creeps up "
        "(seen on the synthetic world's later years). Monitor it on recent calls.",
        "The threshold's guarantee is for all calls together, not per subgroup; subgroups with few "
        "recommended calls have wide bounds (see the flagged subgroups).",
        "Labels are only as good as the outcome linkage (e.g. ambulance or ED within 24 h, admission, "
        "death): missed linkage makes under-triage look lower than it is.",
        "If outcomes are only known for calls that were closed remotely, the model learns from today's "
        "practice and cannot vouch for calls practice never closed.",
        "Reasons describe what moved the model's score, not clinical causes.",
    ]
    if summary.reason_agreement:
        limits.append(
            "Batches larger than the exact-reasons limit get fast (approximate) reasons: "
            + _reason_text(summary.reason_agreement)
        )
    parts = [
        f"# Model card: remote-closure decision support ({summary.data_name})",
        "",
        "## Intended use",
        "",
        "Decision support for clinicians in an ambulance clinical hub: for each incoming call, the "
        "probability that it can be safely closed by telephone (hear and treat), a recommendation "
        "that respects an agreed limit on under-triage, and the features that drove the score. "
        "**Not for autonomous closure**: a clinician makes and owns every disposition.",
        "",
        "Out of scope: calls from other services without re-validation; children or other groups "
        "flagged below without clinical review; use as a triage category.",
        "",
        "## Data",
        "",
        f"- Source: `{summary.data_name}`, fingerprint `{summary.fingerprint}` (content hash; no patient "
        "rows are stored with the model or in the tracking store).",
        f"- Target: {summary.target}.",
        f"- {split_text(summary)}",
        f"- Features: {features}.",
        "",
        "## Model",
        "",
        f"- {summary.model_kind}, parameters {summary.params}.",
        f"- Calibration: {summary.calibration_method}, fitted on the calibration window, the same window "
        "the threshold is chosen and tested on. This leaves the guarantee intact because the calibrated "
        "probability is strictly increasing in the model's raw score (ties, e.g. the flat top of an "
        "isotonic fit, are broken by the raw score; a fit that would reverse the order falls back to "
        "the base rate): every candidate threshold recommends the calls above some raw score, so the "
        "Learn-then-Test walk and its p-values are those of a walk on the raw score, which was fitted on "
        "the training window only. The calibration labels enter the test only through counts; they "
        "shape the probabilities shown, not which calls can be recommended together.",
        f"- Promotion: champion only if the held-out test window's one-sided bound (at "
        f"{1 - summary.safety.delta:.0%}) is within the {percent(summary.safety.limit)} limit; a model "
        "whose test-window bound is above it is registered as a challenger with the reason, never "
        "champion.",
        "",
        "## Metrics (test window)",
        "",
        markdown_table(_headline(summary)),
        "",
        "## Threshold and safety bound",
        "",
        *_safety_lines(summary),
        "",
        "## Subgroup results",
        "",
        _subgroup_section(summary),
        "",
        "## Exclusions",
        "",
        f"Never recommended for remote closure: {_rule_text(summary.rules)}. Missing values in those "
        "columns count as excluded.",
        "",
        "## Known limits",
        "",
        *[f"- {item}" for item in limits],
    ]
    if summary.oracle_comparison is not None:
        parts += ["", "## Synthetic-world check against the oracle", "", *_oracle_lines(summary)]
    if len(flagged):
        parts += ["", f"**{len(flagged)} subgroup(s) flagged**: review before use in those groups."]
    return "\n".join(parts) + "\n"
