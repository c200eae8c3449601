"""Whether a new remote-closure model becomes ``champion``: safety first, then closure share.

The champion alias moves only when the new model (1) has a threshold whose under-triage bound met
the limit on the calibration window, (2) stayed within the limit on the later test window, and
(3) recommends a larger share of the SAME test calls than the current champion does with its own
threshold. The champion is re-scored on those calls through its registered pyfunc, loaded only
after its files match the manifest recorded at registration: that is what a service would serve.

Before the scores are compared: a candidate that serves another contract (other features, a
looser safety limit; :mod:`mlops.contract`) never replaces the champion; a champion whose files
fail the integrity check, or whose probabilities on these calls are not finite or leave [0, 1],
is replaced by a candidate that met the safety checks; a champion that cannot score these calls
at all stays champion, because there is no evidence that the candidate does better on its calls.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from disposition.evaluation import SafetySettings
from disposition.report import percent
from disposition.safety import ClosureResult
from mlops.contract import contract_decision
from mlops.errors import UserInputError
from mlops.gate import probability_problems
from mlops.integrity import ModelIntegrityError, load_verified_model
from mlops.registry import PromotionDecision

SHARE_TAG = "test_closure_share"


class ChampionUnusable(Exception):
    """The stored champion fails its integrity check or answers with impossible probabilities."""


def champion_on_same_calls(
    name: str, version: str, calls: pd.DataFrame, y: np.ndarray, safety: SafetySettings
) -> ClosureResult | None:
    """What the registered ``version`` recommends on ``calls``; None if it cannot score them.

    Raises
    ------
    ChampionUnusable
        Its files do not match its manifest, or its probabilities fail the gate.
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
    except (MlflowException, UserInputError, KeyError, ValueError, TypeError, OSError):
        return None
    if problems := probability_problems(answer["p_safe_remote"].to_numpy(dtype=float)):
        raise ChampionUnusable(f"its probabilities on these calls fail the gate: {'; '.join(problems)}")
    recommend = answer["recommend_remote"].to_numpy(dtype=bool)
    threshold = float(answer["threshold"].iloc[0]) if len(answer) else float("inf")
    # Its recommendations are taken as given: every recommended call counts, whatever its score.
    result = safety.apply(np.ones(len(recommend)), np.asarray(y) == 0, recommend, threshold=0.0)
    return replace(result, threshold=threshold)


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
    compared with the champion's.
    """
    if selection.n_recommended == 0:
        return PromotionDecision(
            False,
            f"no threshold keeps the under-triage bound within {percent(safety.limit)} on the calibration "
            "window: the model would recommend nothing",
        ), None
    if test.under_triage > safety.limit:
        return PromotionDecision(
            False,
            f"under-triage on the test window {percent(test.under_triage)} exceeds the limit "
            f"{percent(safety.limit)}",
        ), None
    if champion is None:
        return PromotionDecision(
            True,
            f"first model meeting the safety bound: recommends {percent(test.share)} of test calls, "
            f"under-triage {percent(test.under_triage)} (bound {percent(test.upper_bound)})",
        ), None
    if contract is not None and (different := contract_decision(contract, champion)) is not None:
        return different, None
    print(
        f"promotion: re-scoring champion v{champion.version} on this run's {len(test_calls):,} test calls "
        "(closure shares are comparable only on the same calls)"
    )
    try:
        rescored = champion_on_same_calls(name, champion.version, test_calls, y_test, safety)
    except ChampionUnusable as error:
        return PromotionDecision(
            True,
            f"replaces champion v{champion.version}, {error}; this model meets the safety bound and "
            f"recommends {percent(test.share)} of test calls",
        ), None
    if rescored is None:
        return PromotionDecision(
            False,
            f"champion v{champion.version} cannot be re-scored on these test calls, so there is no evidence "
            f"this model does better on them; it stays champion (this one recommends {percent(test.share)})",
        ), None
    theirs, how = rescored.share, "on the same test calls"
    if rescored.n_recommended and rescored.under_triage > safety.limit:
        how += f"; note: its under-triage there is {percent(rescored.under_triage)}, above the limit"
    if test.share > theirs:
        return PromotionDecision(
            True,
            f"recommends {percent(test.share)} of test calls within the safety bound, more than champion "
            f"v{champion.version} ({percent(theirs)} {how})",
        ), rescored
    return PromotionDecision(
        False,
        f"recommends {percent(test.share)} of test calls, not more than champion v{champion.version} "
        f"({percent(theirs)} {how})",
    ), rescored
