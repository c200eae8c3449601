"""Whether a new remote-closure model becomes ``champion``: safety first, then closure share.

The champion alias moves only when the new model (1) has a threshold that the Learn-then-Test walk
accepted on the calibration window (:mod:`disposition.threshold`), (2) shows the limit on the
held-out test window: the one-sided Clopper-Pearson upper bound at ``1 - delta`` of its under-triage
there is within the limit (the realised rate alone is not enough), and (3) recommends a larger
share of the SAME test calls than the current champion does with its own threshold, or replaces a
champion whose own test-window bound on those calls is above the limit. Every message names the
window whose bound it reports (calibration or test) and its numbers.
The champion is re-scored on those calls through its registered pyfunc, loaded only after its files
match the manifest recorded at registration: that is what a service would serve.

A refused model is still registered, as a non-champion version (``challenger``) whose description
and ``promotion`` tag give the reason, so the run's evidence is kept; registration and the alias
are applied together (:func:`mlops.registry.register_and_promote`), never half.

Before the scores are compared: a candidate that serves another contract (other features, a
looser safety limit; :mod:`mlops.contract`) never replaces the champion; a champion whose files
fail the integrity check, or whose probabilities on these calls are not finite or leave [0, 1],
is replaced by a candidate that met the safety checks; a champion that cannot score these calls
at all stays champion, because there is no evidence that the candidate does better on its calls
(the failure is printed and is the refusal's reason: reported, never swallowed).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from disposition.evaluation import SafetySettings, nothing_recommended_text
from disposition.report import percent
from disposition.safety import ClosureResult
from disposition.threshold import required_calls, smallest_supported_limit
from mlops.contract import contract_decision
from mlops.errors import UserInputError
from mlops.gate import probability_problems
from mlops.integrity import ModelIntegrityError, load_verified_model
from mlops.registry import PromotionDecision

SHARE_TAG = "test_closure_share"


class ChampionUnusable(Exception):
    """The stored champion fails its integrity check or answers with impossible probabilities."""


class ChampionNotRescored(Exception):
    """The stored champion could not score the calls; the message says why (no request values)."""


def failure_summary(error: BaseException) -> str:
    """``ExceptionClass: first line of its message``, with nothing quoted from the calls.

    MLflow's schema errors quote the whole request ("Failed to enforce schema of data '...'"):
    only the reason after its ``Error:`` is kept. Quoted text is cut out of messages not written
    for clients (``client_safe``), as it may be a patient's value.
    """
    text = str(error)
    if "enforce schema" in text and "Error: " in text:
        text = text.rsplit("Error: ", 1)[1]
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    if not getattr(error, "client_safe", False):
        line = re.sub(r"'[^']*'?|\"[^\"]*\"?", "'...'", line)
    line = line if len(line) <= 200 else line[:200] + "..."
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def champion_on_same_calls(
    name: str, version: str, calls: pd.DataFrame, y: np.ndarray, safety: SafetySettings
) -> ClosureResult:
    """What the registered ``version`` recommends on ``calls``.

    Raises
    ------
    ChampionUnusable
        Its files do not match its manifest, or its probabilities fail the gate.
    ChampionNotRescored
        It cannot score these calls (e.g. they no longer fit its signature); the message is
        :func:`failure_summary` of the error.
    """
    # A served model receives categories as text; pandas categoricals fail MLflow's schema check.
    categorical = [c for c in calls.columns if isinstance(calls[c].dtype, pd.CategoricalDtype)]
    calls = calls.astype({c: object for c in categorical})
    try:
        model = load_verified_model(f"models:/{name}/{version}")
    except ModelIntegrityError as error:
        raise ChampionUnusable(f"its files fail the integrity check ({error})") from error
    try:
        schema = model.metadata.get_input_schema()
        if schema is not None:  # send only what it reads (extra columns only cause warnings)
            calls = calls[[c for c in schema.input_names() if c in calls.columns]]
        answer = model.predict(calls, params={"reasons": "none"})
    except (MlflowException, UserInputError, KeyError, ValueError, TypeError, OSError) as error:
        raise ChampionNotRescored(failure_summary(error)) from error
    if problems := probability_problems(answer["p_safe_remote"].to_numpy(dtype=float)):
        raise ChampionUnusable(f"its probabilities on these calls fail the gate: {'; '.join(problems)}")
    recommend = answer["recommend_remote"].to_numpy(dtype=bool)
    # A call without a threshold is served null (versions before that served inf): both read as inf.
    # With a threshold per subgroup level each call carries its own (never looser than the overall
    # one), so the loosest served is the champion's overall threshold, as safety.apply reports it;
    # the first call's was only that when it belonged to no stricter level.
    served = answer["threshold"].to_numpy(dtype=float, na_value=np.inf)
    threshold = float(np.min(served, initial=np.inf))
    # Its recommendations are taken as given: every recommended call counts, whatever its score.
    result = safety.apply(np.ones(len(recommend)), np.asarray(y) == 0, recommend, threshold=0.0)
    return replace(result, threshold=threshold)


def window_bound_text(result: ClosureResult, window: str, safety: SafetySettings) -> str:
    """``test-window bound 1.07 % (12 unsafe of 1,630 recommended, under-triage 0.74 %; one-sided
    Clopper-Pearson at 95%)``: the window named, then the numbers behind its bound."""
    return (
        f"{window}-window bound {percent(result.upper_bound)} ({result.n_unsafe:,} unsafe of "
        f"{result.n_recommended:,} recommended, under-triage {percent(result.under_triage)}; one-sided "
        f"Clopper-Pearson at {1 - safety.delta:.0%})"
    )


def refusal_on_test_window(
    selection: ClosureResult, test: ClosureResult, safety: SafetySettings
) -> str | None:
    """Why the held-out test window does not show the limit, in numbers; None when it does.

    When the test window's recommended calls are too few to show the limit even with none unsafe,
    the message says so (how many there were, how many it would take, which limit they support)
    rather than blaming the model.
    """
    limit = percent(safety.limit)
    calibration = window_bound_text(selection, "calibration", safety)
    if test.n_recommended == 0:
        return (
            f"the threshold chosen on the calibration window ({calibration}) recommends none of the "
            f"{test.n_calls:,} test-window calls, so the test window cannot show the {limit} limit"
        )
    if test.upper_bound <= safety.limit:
        return None
    reason = f"{window_bound_text(test, 'test', safety)} exceeds the {limit} limit ({calibration})"
    needed = required_calls(safety.limit, safety.delta)
    if test.n_recommended < needed:
        supported = smallest_supported_limit(test.n_recommended, safety.delta)
        reason += (
            f"; its {test.n_recommended:,} recommended test calls are too few to show {limit} even with "
            f"none unsafe (at least {needed:,} needed at delta {safety.delta:g}; they could at best "
            f"support a limit of {percent(supported)})"
        )
    return reason


def decide(
    champion: ModelVersion | None,
    name: str,
    selection: ClosureResult,
    test: ClosureResult,
    test_calls: pd.DataFrame,
    y_test: np.ndarray,
    safety: SafetySettings,
    contract: dict | None = None,
) -> tuple[PromotionDecision, ClosureResult | None]:
    """The promotion decision in words, and the champion's result on the same calls (if scored).

    ``champion`` is the version currently holding the alias (None if there is none); the caller
    applies the decision, e.g. with :func:`mlops.registry.register_and_promote`, which re-decides
    if a parallel job moved the champion meanwhile. ``contract`` is the candidate's served contract,
    compared with the champion's. ``selection`` is the threshold on the calibration window, ``test``
    what it does on the held-out test window; the gate is the test window's one-sided bound.
    """
    if selection.n_recommended == 0:
        return PromotionDecision(False, nothing_recommended_text(selection, safety)), None
    if (refusal := refusal_on_test_window(selection, test, safety)) is not None:
        return PromotionDecision(False, refusal), None
    limit = percent(safety.limit)
    shown = f"{window_bound_text(test, 'test', safety)} is within the {limit} limit"
    if champion is None:
        return PromotionDecision(
            True, f"first model whose {shown}: recommends {percent(test.share)} of test calls"
        ), None
    if contract is not None and (different := contract_decision(contract, champion)) is not None:
        return replace(different, reason=f"{different.reason}; this model's {shown}"), None
    print(
        f"promotion: re-scoring champion v{champion.version} on this run's {len(test_calls):,} test calls "
        "(closure shares are comparable only on the same calls)"
    )
    try:
        rescored = champion_on_same_calls(name, champion.version, test_calls, y_test, safety)
    except ChampionUnusable as error:
        return PromotionDecision(
            True,
            f"replaces champion v{champion.version}, {error}; this model's {shown} and it recommends "
            f"{percent(test.share)} of test calls",
        ), None
    except ChampionNotRescored as error:
        # Reported, never swallowed: the reason is printed now and becomes the run's promotion tag.
        print(f"promotion: could not re-score champion v{champion.version} on these test calls: {error}")
        return PromotionDecision(
            False,
            f"champion v{champion.version} could not be re-scored on these test calls ({error}), so there "
            f"is no evidence this model does better on them; it stays champion (this one recommends "
            f"{percent(test.share)}; its {shown})",
        ), None
    theirs = rescored.share
    if rescored.n_recommended and rescored.upper_bound > safety.limit:
        # Its own threshold no longer shows the limit on today's calls; this one does.
        return PromotionDecision(
            True,
            f"replaces champion v{champion.version}, whose {window_bound_text(rescored, 'test', safety)} "
            f"on the same test calls exceeds the {limit} limit; this model's {shown} and it recommends "
            f"{percent(test.share)} of test calls ({percent(theirs)} for the champion)",
        ), rescored
    how = f"on the same test calls; {window_bound_text(rescored, 'test', safety)}"
    if test.share > theirs:
        return PromotionDecision(
            True,
            f"recommends {percent(test.share)} of test calls, more than champion v{champion.version} "
            f"({percent(theirs)} {how}); this model's {shown}",
        ), rescored
    return PromotionDecision(
        False,
        f"recommends {percent(test.share)} of test calls, not more than champion v{champion.version} "
        f"({percent(theirs)} {how}); this model's {shown}",
    ), rescored
