"""Entry point: ``python -m experiments.bench benchmark=<name> [benchmark.params.x=...]``.

Runs one benchmark as an MLflow run in experiment ``benchmark-<name>`` and rewrites
``experiments/results/<name>.md`` (and its CSV tables). ``make bench`` runs them all.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.harness import RESULTS_DIR, run_benchmark
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors
from mlops.tracking import resolve_store


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="bench")
@report_user_errors
def main(cfg: DictConfig) -> None:
    params = OmegaConf.to_container(cfg.benchmark.params, resolve=True)
    results_dir = Path(cfg.results_dir).expanduser().resolve() if cfg.results_dir else RESULTS_DIR
    store = resolve_store(cfg.tracking)
    outcome = run_benchmark(
        str(cfg.benchmark.name),
        str(cfg.benchmark.module),
        params,
        store,
        Path(HydraConfig.get().runtime.output_dir),
        results_dir,
    )
    print(outcome.report.markdown)
    print(f"\nwrote {', '.join(str(path) for path in outcome.files)}")
    print(f"MLflow run {outcome.run_id} in experiment {outcome.experiment_name!r}: {store.ui_command}")


if __name__ == "__main__":
    main()
