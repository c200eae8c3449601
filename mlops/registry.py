"""Registering model versions and moving the ``champion`` alias only on evidence.

The alias scheme: ``champion`` is the version other services load
(``models:/<name>@champion``); a version that did not beat it gets ``challenger`` so it can be
inspected and compared; any version can be pinned as ``models:/<name>/<version>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops.concurrency import exclusive_lock, is_transient, retry_transient

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate version became champion, and why, in words for the run log."""

    promoted: bool
    reason: str


def register_version(model_uri: str, name: str, tags: dict[str, str]) -> ModelVersion:
    """Register ``model_uri`` under ``name`` with ``tags`` on the new version.

    Retried on contention: parallel jobs registering versions of one name can exhaust MLflow's
    own three retries of a version-number clash. A failed attempt commits nothing, so a retry
    cannot leave a duplicate version.
    """
    str_tags = {k: str(v) for k, v in tags.items()}
    return retry_transient(lambda: mlflow.register_model(model_uri, name, tags=str_tags))


def version_with_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding ``alias``, or None when the model or alias does not exist yet.

    A busy store is retried, not read as "no alias": that would crown a newcomer without a
    comparison.
    """
    try:
        return retry_transient(lambda: client.get_model_version_by_alias(name, alias))
    except MlflowException as error:
        if is_transient(error):
            raise
        return None


def apply_decision(client: MlflowClient, version: ModelVersion, decision: PromotionDecision) -> None:
    """Move ``champion`` to the version if promoted, else mark it ``challenger``; record why."""
    alias = CHAMPION if decision.promoted else CHALLENGER
    retry_transient(lambda: client.set_registered_model_alias(version.name, alias, version.version))
    retry_transient(
        lambda: client.set_model_version_tag(version.name, version.version, "promotion", decision.reason)
    )


def promote_on_evidence(
    client: MlflowClient,
    version: ModelVersion,
    decide: Callable[[ModelVersion | None], PromotionDecision],
    lock_path: Path,
    rounds: int = 5,
) -> PromotionDecision:
    """Decide against the current champion and apply the decision only if it is still champion.

    Without this, parallel jobs of a multirun each compare themselves with the same old champion
    and the last to write the alias wins, whatever its score. Here the check that the champion
    has not moved since the decision and the alias write happen together under a store-wide lock,
    so the decisions applied are those of the same jobs run one after another: on the same data
    the champion ends on the lowest score (ties keep the version that got there first).
    ``decide`` runs outside the lock because it may refit the champion on new data, which is slow.

    Parameters
    ----------
    client : MlflowClient
        Client of the store holding the model.
    version : ModelVersion
        The newly registered candidate.
    decide : callable
        Takes the current champion (None if there is none) and returns the decision for
        ``version``. May be called more than once, when another job moved the champion meanwhile.
    lock_path : pathlib.Path
        Lock file shared by every job on the store (see
        :func:`mlops.concurrency.store_lock_path`).
    rounds : int, default 5
        Decisions made outside the lock before deciding while holding it, so that a store whose
        champion keeps moving still gets a decision.

    Returns
    -------
    PromotionDecision
        The decision that was applied.
    """
    for _ in range(rounds):
        champion = version_with_alias(client, version.name, CHAMPION)
        decision = decide(champion)
        with exclusive_lock(lock_path):
            if _number(version_with_alias(client, version.name, CHAMPION)) == _number(champion):
                apply_decision(client, version, decision)
                return decision
    with exclusive_lock(lock_path):
        decision = decide(version_with_alias(client, version.name, CHAMPION))
        apply_decision(client, version, decision)
        return decision


def _number(version: ModelVersion | None) -> str | None:
    return None if version is None else str(version.version)
