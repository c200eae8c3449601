"""Served contracts: what a registered model answers for, carried in its MLmodel ``metadata``.

Each app builds its contract when it logs the model (``log_model(metadata=...)``), so a service
can read the series, areas, scenarios or features a model serves with
``mlflow.models.get_model_info("models:/<name>@champion").metadata`` instead of learning them from
error messages. Every contract has ``kind`` and ``contract_version``.

At promotion the candidate's contract is compared with the champion's. Only the parts callers
rely on are compared (``SERVED_KEYS``): a retrain on newer data changes the training end date,
the fingerprint, a threshold or the range of ages seen, and must still be able to replace the
champion; other series, areas, scenarios, a shorter horizon, other features or a looser safety
limit would break or silently change what callers get, so such a candidate never moves
``champion`` and is registered as ``challenger`` instead.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from mlops.registry import PromotionDecision

CONTRACT_VERSION = 1
# For each kind of model, the contract entries a caller depends on.
SERVED_KEYS = {
    "daily_forecast": ("series", "max_horizon", "levels", "regressors"),
    "projection": ("areas", "scenarios", "base_year", "final_year", "measures", "quantiles"),
    "remote_closure": ("features", "outputs", "safety_limit"),
}


def served_part(contract: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``contract`` that callers rely on, normalised for comparison."""
    part = {key: contract.get(key) for key in SERVED_KEYS.get(contract.get("kind"), ())}
    if isinstance(part.get("features"), dict):  # names and types; ranges and levels follow the data
        part["features"] = sorted(f"{name}:{spec.get('type')}" for name, spec in part["features"].items())
    return part


def contract_differences(candidate: dict[str, Any], champion: dict[str, Any]) -> list[str]:
    """How the candidate's served contract differs from the champion's, in words (empty if not)."""
    if candidate.get("kind") != champion.get("kind"):
        return [f"kind {candidate.get('kind')!r} instead of {champion.get('kind')!r}"]
    ours, theirs = served_part(candidate), served_part(champion)
    return [_describe(key, ours[key], theirs[key]) for key in ours if ours[key] != theirs[key]]


def read_contract(name: str, version: str | int) -> dict[str, Any] | None:
    """The contract a registered version carries in its MLmodel metadata (None if it has none)."""
    try:
        metadata = mlflow.models.get_model_info(f"models:/{name}/{version}").metadata
    except (MlflowException, OSError):
        return None
    return metadata if metadata and "kind" in metadata else None


def contract_decision(candidate: dict[str, Any], champion: ModelVersion) -> PromotionDecision | None:
    """A "not promoted" decision when the candidate serves another contract than ``champion``.

    None when the contracts agree on what callers rely on, or when the champion carries no
    contract (registered before contracts existed): the usual evidence then decides.
    """
    theirs = read_contract(champion.name, champion.version)
    if theirs is None:
        return None
    differences = contract_differences(candidate, theirs)
    if not differences:
        return None
    return PromotionDecision(
        False,
        f"contract differs from champion v{champion.version}: {'; '.join(differences)}; to keep both, "
        "give it its own name with registry.model_name=...",
    )


def _describe(key: str, ours: Any, theirs: Any, limit: int = 8) -> str:
    if isinstance(ours, list) and isinstance(theirs, list) and max(len(ours), len(theirs)) > limit:
        added = [v for v in ours if v not in theirs][:limit]
        lacking = [v for v in theirs if v not in ours][:limit]
        change = ", ".join(
            part for part in (added and f"adds {added}", lacking and f"lacks {lacking}") if part
        )
        return f"{key} {change or 'in another order'} (champion has {len(theirs)}, this one {len(ours)})"
    return f"{key} {ours!r} instead of {theirs!r}"
