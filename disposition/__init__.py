"""Call-level remote-closure decision support: synthetic calls, model, calibration, safety threshold,
subgroup report, model card, MLflow pyfunc and the Hydra training app."""
