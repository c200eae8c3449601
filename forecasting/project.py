"""Entry point: ``python -m forecasting.project [overrides]`` (also the ``forecast-project`` script)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from forecasting.projection.pipeline import project
from mlops.console import attach_log_to_run, log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors
from mlops.tracking import resolve_store


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="project")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    command = " ".join(["python -m forecasting.project", *hydra_cfg.overrides.task])
    result = project(cfg, Path(hydra_cfg.runtime.output_dir), command)
    status = "promoted to champion" if result.promoted else "registered as challenger"
    print("\n" + "\n".join(result.headlines))
    print(
        f"\nreport (open in a browser): {result.report_path}\n"
        f"tables and charts: {result.output_dir}\n"
        f"projection model version {result.version} {status}: {result.reason}\n"
        f"load it, files checked: mlops.integrity.load_verified_model('{result.model_uri}')\n"
        f"open the MLflow UI: {result.ui_command}"
    )
    attach_log_to_run(resolve_store(cfg.tracking).tracking_uri, result.run_id, "results")


if __name__ == "__main__":
    main()
