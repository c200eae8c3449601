"""Entry point that writes the synthetic world to ``data/synthetic/``."""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from forecasting.config_checks import check_generate_config
from forecasting.io import atomic_write, read_population
from forecasting.synthetic import World, area_population, simulate_daily_counts
from mlops.console import log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors


def generate(cfg: DictConfig) -> dict[str, Path]:
    """Simulate the world described by ``cfg.world`` and write it with the config that made it.

    Returns the paths written: daily counts, population by area and band, and the world config.
    """
    check_generate_config(cfg)  # every config value, before any file is read
    world = World.from_dict(OmegaConf.to_container(cfg.world, resolve=True))
    national = read_population(cfg.population_path)
    counts = simulate_daily_counts(world, national)
    population = area_population(world, national)
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "daily_counts": output_dir / "daily_counts.csv",
        "population": output_dir / "population.csv",
        "world": output_dir / "world.yaml",
    }
    counts = counts.assign(ds=counts["ds"].dt.strftime("%Y-%m-%d"), y_expected=counts["y_expected"].round(4))
    atomic_write(paths["daily_counts"], lambda f: counts.to_csv(f, index=False))
    atomic_write(
        paths["population"],
        lambda f: population.assign(population=population["population"].round(1)).to_csv(f, index=False),
    )
    atomic_write(paths["world"], lambda f: f.write(OmegaConf.to_yaml(cfg)))
    return paths


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> None:
    paths = generate(cfg)
    counts = pd.read_csv(paths["daily_counts"])
    print(
        f"synthetic world: {counts['unique_id'].nunique()} series x {counts['ds'].nunique()} days "
        f"-> {paths['daily_counts']}"
    )


if __name__ == "__main__":
    main()
