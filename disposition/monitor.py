"""Entry point: ``python -m disposition.monitor [overrides]`` (also the ``disposition-monitor`` script).

Exit status: 0 when no stream breached the limit, 3 when one did (so a scheduler or CI job can act
on it), 2 for a problem with the file or the config (one line saying what to fix).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from disposition.monitor_pipeline import monitor
from mlops.console import attach_log_to_run, log_console
from mlops.entry import CONFIG_DIR
from mlops.errors import report_user_errors
from mlops.tracking import resolve_store

__all__ = ["BREACH_EXIT_STATUS", "main", "monitor"]

BREACH_EXIT_STATUS = 3


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="monitor")
@log_console
@report_user_errors
def main(cfg: DictConfig) -> None:
    result = monitor(cfg, Path(HydraConfig.get().runtime.output_dir))
    overall = result.streams.iloc[0]
    alarms = result.streams[result.streams["alarm"]]
    print(
        f"\n{overall.calls:,} remotely closed calls, {overall.bad:,} bad outcomes "
        f"({100 * overall.rate:.2f} %, confidence sequence {100 * overall.lower_bound:.2f}-"
        f"{100 * overall.upper_bound:.2f} %); limit {100 * result.limit:g} % from {result.limit_source}"
    )
    if alarms.empty:
        print(f"no breach in {len(result.streams)} streams (overall and subgroups)")
    for row in alarms.itertuples():
        print(
            f"BREACH {row.stream}: under-triage above the limit, evidence from call "
            f"{int(row.alarm_call):,} of the stream ({row.alarm_time:%Y-%m-%d %H:%M}); "
            f"{row.bad:,} of {row.calls:,} ({100 * row.rate:.2f} %)"
        )
    print(
        f"model version tagged: {result.model_version or 'none'}\n"
        f"report: {result.output_dir / 'monitoring.md'}"
    )
    attach_log_to_run(resolve_store(cfg.tracking).tracking_uri, result.run_id, "report")
    if result.breach:
        sys.exit(BREACH_EXIT_STATUS)


if __name__ == "__main__":
    main()
