"""Entry point: ``python -m disposition.train [overrides]`` (also the ``disposition-train`` script)."""

from __future__ import annotations

import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from disposition.pipeline import train
from mlops.console import attach_log_to_run, log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors
from mlops.tracking import resolve_store

__all__ = ["main", "train"]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="disposition")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> float:
    result = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    m = result.metrics
    status = "promoted to champion" if result.promoted else "registered as challenger"
    print(
        f"\ntest window: AUC {m['test_auc']:.4f}, ECE {m['test_ece']:.4f}; {_deployed(m)}\n"
        f"flagged subgroups: {', '.join(result.flagged) if result.flagged else 'none'}\n"
        f"model version {result.version} {status}: {result.reason}\n"
        f"load it, files checked: mlops.integrity.load_verified_model('{result.model_uri}')\n"
        f"report, model card, plots: {result.output_dir}\n"
        f"open the MLflow UI: {result.ui_command}"
    )
    attach_log_to_run(resolve_store(cfg.tracking).tracking_uri, result.run_id, "report")
    return m["test_deployed_share"]  # lets a sweeper maximise closure within the safety limit


def _deployed(m: dict[str, float]) -> str:
    """The deployed threshold on the test window, in words: an infinite threshold means the
    calibration window could not show the limit for any call, so nobody is recommended."""
    if not math.isfinite(m["selection_threshold"]) and m["test_deployed_share"] == 0:
        return "no threshold could show the limit on the calibration window: no call recommended"
    return (
        f"threshold P(safe) >= {m['selection_threshold']:.4f} (overall) recommends "
        f"{100 * m['test_deployed_share']:.1f} % of calls, "
        f"under-triage {100 * m['test_deployed_under_triage']:.2f} % "
        f"(test-window upper bound {100 * m['test_deployed_upper_bound']:.2f} %)"
    )


if __name__ == "__main__":
    main()
