"""Daily ambulance demand: synthetic world, data, models, backtests, metrics and pipelines."""
