"""Entry point: ``python -m forecasting.train [overrides]`` (also the ``forecast-train`` script)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from forecasting.pipeline import train
from mlops.console import attach_log_to_run, log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors
from mlops.tracking import resolve_store


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="forecast")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> float:
    result = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    status = "promoted to champion" if result.promoted else "registered as challenger"
    print(
        f"\nbacktest: MASE {result.metrics['mase']:.3f}, MAE {result.metrics['mae']:.2f}, "
        f"coverage 80/95 % = {result.metrics.get('coverage_80', float('nan')):.3f}/"
        f"{result.metrics.get('coverage_95', float('nan')):.3f}\n"
        f"model version {result.version} {status}: {result.reason}\n"
        f"load it, files checked: mlops.integrity.load_verified_model('{result.model_uri}')\n"
        f"results (tables, plot): {result.output_dir}\n"
        f"open the MLflow UI: {result.ui_command}"
    )
    attach_log_to_run(resolve_store(cfg.tracking).tracking_uri, result.run_id, "results")
    return result.metrics["mase"]  # lets sweepers (e.g. Optuna) minimise MASE


if __name__ == "__main__":
    main()
