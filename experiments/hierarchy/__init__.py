"""Coherent hierarchies benchmark: reconciled totals vs direct forecasts (see run.py)."""
