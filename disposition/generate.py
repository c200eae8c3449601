"""Entry point that writes synthetic call records to ``data/synthetic/calls.parquet``."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from disposition.synthetic_calls import FollowUp, Practice, describe_calls, sample_calls
from forecasting.io import atomic_write, read_table
from mlops.console import log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import ConfigError, report_user_errors


def generate(cfg: DictConfig) -> dict[str, Path]:
    """Sample ``cfg.n_calls`` calls from the synthetic world; write them and the config that made them."""
    counts = read_table(cfg.counts_path)
    population = read_table(cfg.population_path)
    world_path = Path(cfg.world_path)
    if not world_path.is_file():
        raise ConfigError(f"{world_path}: world config not found; run `python -m forecasting.generate` first")
    ratio = OmegaConf.to_container(OmegaConf.load(world_path).world.age_rate_ratio)
    practice = Practice(**OmegaConf.to_container(cfg.practice, resolve=True))
    followup = FollowUp(**OmegaConf.to_container(cfg.get("followup") or {}, resolve=True))
    period = cfg.get("period") or {}
    sample = sample_calls(
        counts,
        population,
        ratio,
        int(cfg.n_calls),
        int(cfg.seed),
        practice,
        followup,
        (period.get("start"), period.get("end")),
    )
    output = Path(cfg.output_path)
    record = output.with_suffix(".yaml")
    figures = {k: round(v, 5) for k, v in describe_calls(sample.calls).items()}
    made = OmegaConf.create({"config": cfg, "intercept": round(sample.intercept, 6), "figures": figures})
    atomic_write(output, lambda f: sample.calls.to_parquet(f, index=False, compression="zstd"), mode="wb")
    atomic_write(record, lambda f: f.write(OmegaConf.to_yaml(made, resolve=True)))
    return {"calls": output, "record": record}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="disposition_generate")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> None:
    paths = generate(cfg)
    print(f"synthetic calls -> {paths['calls']} (config and headline figures: {paths['record']})")


if __name__ == "__main__":
    main()
