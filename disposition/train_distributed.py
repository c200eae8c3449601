"""Entry point: ``python -m disposition.train_distributed calls.path=<Parquet folder> [overrides]``."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from disposition.distributed_pipeline import train_distributed
from mlops.console import log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="disposition_distributed")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> None:
    result = train_distributed(cfg, Path(HydraConfig.get().runtime.output_dir))
    m = result.metrics
    print(
        f"test window: AUC {m['test_auc']:.4f}, {m['test_deployed_share']:.1%} recommended, under-triage "
        f"{m['test_deployed_under_triage']:.2%}; fit {m['time_fit_s']:.0f} s\n"
        f"model version {result.version}: {result.reason}\nload it: {result.model_uri}\n"
        f"model card: {result.output_dir / 'model_card.md'}"
    )


if __name__ == "__main__":
    main()
