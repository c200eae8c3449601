"""Coherent forecasts of hierarchies (e.g. areas x categories -> totals): structure, reconciliation,
the wrapping forecaster and per-level scores. Library code: no Hydra, no MLflow."""

from forecasting.hierarchy.forecaster import CHOICES, HierarchicalForecaster
from forecasting.hierarchy.reconcile import METHODS, projection, shrunk_covariance
from forecasting.hierarchy.scoring import describe_levels, level_metrics, metrics_by_level
from forecasting.hierarchy.settings import HierarchySettings, hierarchy_contract
from forecasting.hierarchy.structure import TOTAL, Hierarchy, aggregate, build_hierarchy

__all__ = [
    "CHOICES",
    "METHODS",
    "TOTAL",
    "HierarchicalForecaster",
    "Hierarchy",
    "HierarchySettings",
    "aggregate",
    "build_hierarchy",
    "describe_levels",
    "hierarchy_contract",
    "level_metrics",
    "metrics_by_level",
    "projection",
    "shrunk_covariance",
]
