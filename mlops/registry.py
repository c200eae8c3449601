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
from mlops.integrity import manifest_tags
from mlops.tracking import is_permission_denied, permission_denied

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate version became champion, and why, in words for the run log."""

    promoted: bool
    reason: str


def register_version(model_uri: str, name: str, tags: dict[str, str]) -> ModelVersion:
    """Register ``model_uri`` under ``name`` with ``tags`` and its integrity manifest on the new version.

    The manifest (:func:`mlops.integrity.manifest_tags`) is computed from the stored files before
    the version exists, so a version is never visible without it. Call inside the run that logged
    the model. Retried on contention: parallel jobs registering versions of one name can exhaust
    MLflow's own three retries of a version-number clash. A failed attempt commits nothing, so a
    retry cannot leave a duplicate version.
    """
    return _register(model_uri, name, {**tags, **manifest_tags(model_uri)})


def _register(model_uri: str, name: str, tags: dict) -> ModelVersion:
    str_tags = {k: str(v) for k, v in tags.items()}
    try:
        return retry_transient(lambda: mlflow.register_model(model_uri, name, tags=str_tags))
    except MlflowException as error:
        if is_permission_denied(error):
            raise permission_denied(f"registered model {name!r}", "registry.model_name") from error
        raise


def register_and_promote(
    client: MlflowClient,
    model_uri: str,
    name: str,
    tags: dict[str, str],
    decide: Callable[[ModelVersion | None], PromotionDecision],
    lock_path: Path,
    rounds: int = 5,
    description: str = "",
) -> tuple[ModelVersion, PromotionDecision]:
    """Decide against the current champion, then register the candidate and apply the decision.

    ``description`` (what the model is, its data and scores) becomes the version's description in
    the registry, followed by the decision and its reason.

    Everything that can fail before the model is worth keeping (re-scoring the champion, loading
    it, comparing contracts) happens in ``decide``, before any version exists: a run that stops
    there leaves the registry as it was. Registration and the alias move then happen together
    under the store lock, and only if the champion has not moved since the decision (see
    :func:`promote_on_evidence`); if registering succeeded but the alias could not be set, the new
    version is deleted again so no version is left without its decision.

    Returns
    -------
    (ModelVersion, PromotionDecision)
        The registered version and the decision applied to it.
    """
    tags = {**tags, **manifest_tags(model_uri)}  # once, outside the lock: it downloads the model
    for attempt in range(rounds + 1):
        last = attempt == rounds
        champion = None if last else version_with_alias(client, name, CHAMPION)
        decision = None if last else decide(champion)
        with exclusive_lock(lock_path):
            current = version_with_alias(client, name, CHAMPION)
            if last:  # a champion that keeps moving: decide while holding the lock
                decision = decide(current)
            elif _number(current) != _number(champion):
                continue
            version = _register(model_uri, name, tags)
            try:
                apply_decision(client, version, decision, description)
            except BaseException:
                number = version.version
                retry_transient(lambda: client.delete_model_version(name, number))  # noqa: B023
                raise
            return version, decision
    raise AssertionError("unreachable")  # pragma: no cover


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
        # A team server answers 403 both for a model nobody has made yet and for one owned by
        # another user; the latter then fails at registration, with its own message.
        return None


def apply_decision(
    client: MlflowClient, version: ModelVersion, decision: PromotionDecision, description: str = ""
) -> None:
    """Move ``champion`` to the version if promoted, else mark it ``challenger``; record why (in a tag
    and, after ``description``, in the version's description, which the registry UI shows)."""
    alias = CHAMPION if decision.promoted else CHALLENGER
    retry_transient(lambda: client.set_registered_model_alias(version.name, alias, version.version))
    retry_transient(
        lambda: client.set_model_version_tag(version.name, version.version, "promotion", decision.reason)
    )
    text = f"{description.strip()}\n\n" if description.strip() else ""
    text += f"Registered as {alias}: {decision.reason}."
    retry_transient(lambda: client.update_model_version(version.name, version.version, description=text))


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
