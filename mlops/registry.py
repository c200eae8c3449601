"""Registering model versions and moving the ``champion`` alias only on evidence.

The alias scheme: ``champion`` is the version other services load
(``models:/<name>@champion``); a version that did not beat it gets ``challenger`` so it can be
inspected and compared; any version can be pinned as ``models:/<name>/<version>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate version became champion, and why, in words for the run log."""

    promoted: bool
    reason: str


def register_version(model_uri: str, name: str, tags: dict[str, str]) -> ModelVersion:
    """Register ``model_uri`` under ``name`` with ``tags`` on the new version."""
    version = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()})
    return version


def version_with_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding ``alias``, or None when the model or alias does not exist yet."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def apply_decision(client: MlflowClient, version: ModelVersion, decision: PromotionDecision) -> None:
    """Move ``champion`` to the version if promoted, else mark it ``challenger``; record why."""
    alias = CHAMPION if decision.promoted else CHALLENGER
    client.set_registered_model_alias(version.name, alias, version.version)
    client.set_model_version_tag(version.name, version.version, "promotion", decision.reason)
