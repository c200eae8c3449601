"""Plumbing shared by the toolkit's pipelines: user-facing errors, the MLflow store and registry.

Library code (models, metrics, generators) may import :mod:`mlops.errors` only; the other modules
import MLflow and belong to the pipeline layer.
"""
