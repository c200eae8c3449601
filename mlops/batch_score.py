"""Entry point: ``python -m mlops.batch_score model_uri=... input=... output=...`` (batch scoring)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mlops.batch_scoring import score_directory
from mlops.console import log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="batch_score")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> None:
    result = score_directory(cfg)
    print(
        f"scored {result.rows:,} rows in {result.parts} part(s) with {result.model_uri} "
        f"(version {result.version}, files verified) in {result.seconds:.1f} s on {result.engine}\n"
        f"scores: {result.output_dir}"
    )


if __name__ == "__main__":
    main()
