"""The ``engine`` config group, checked before any work starts (pipeline layer).

``check_engine(cfg)`` refuses the first impossible value in one line and returns the settings for
:func:`mlops.engine.start_engine`. It also refuses a multi-machine run on the embedded SQLite
store: jobs on other machines (a cluster at ``engine.address``, a ``submitit_slurm`` sweep) must
log to the team tracking server (``tracking=server``), since SQLite on a shared disk is neither
safe for concurrent writers nor visible to the team.
"""

from __future__ import annotations

import re

from omegaconf import DictConfig

from mlops.config_checks import (
    ABSENT,
    Choice,
    ExistingPath,
    Flag,
    MappingOf,
    Text,
    WholeNumber,
    lookup,
    refuse,
    shown,
)
from mlops.engine import EngineSettings
from mlops.errors import ConfigError

ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d+/?$")
MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*([kKmMgGtT]i?[bB]|[bB])?\s*$")


def check_engine(cfg: DictConfig, key: str = "engine", launcher: str | None = None) -> EngineSettings:
    """Check ``cfg.engine`` (absent means local) and the tracking store it needs; return its settings.

    Parameters
    ----------
    launcher : str, optional
        The Hydra launcher's ``_target_`` for this run (see :func:`current_launcher`).
    """
    block = lookup(cfg, key, default=None)
    if block is None:
        settings = EngineSettings()
    else:
        MappingOf(what="an engine config, e.g. engine=local or engine=dask").apply(block, key)
        settings = _checked_settings(cfg, key)
    remote = settings.kind == "dask" and settings.address is not None and not _loopback(settings.address)
    slurm = launcher is not None and "slurm" in launcher.lower()
    if (remote or slurm) and lookup(cfg, "tracking.uri", default=None) is None:
        where = f"{key}.address={settings.address}" if remote else "hydra/launcher=submitit_slurm"
        raise ConfigError(
            f"{where} runs on other machines, which must log to the team tracking server, not the "
            "SQLite store (tracking=sqlite): add tracking=server (docs/serving.md, Team tracking server)"
        )
    return settings


def _checked_settings(cfg: DictConfig, key: str) -> EngineSettings:
    kind = Choice(("local", "dask")).check(cfg, f"{key}.kind")
    per_task = WholeNumber(1, unit="series", nullable=True).check(cfg, f"{key}.series_per_task", default=None)
    if kind == "local":
        return EngineSettings(kind="local", series_per_task=per_task)
    address = Text(nullable=True, what="a scheduler address such as tcp://host:8786").check(
        cfg, f"{key}.address"
    )
    if address is not None and not ADDRESS.match(address):
        raise refuse(
            f"{key}.address", address, "a scheduler address such as tcp://host:8786 or tls://host:8786"
        )
    memory = lookup(cfg, f"{key}.memory_limit")
    if memory is ABSENT or not (
        memory is None or (isinstance(memory, str) and (memory == "auto" or MEMORY.match(memory)))
    ):
        raise refuse(f"{key}.memory_limit", memory, "a size per worker such as 4GiB or 500MB, auto or null")
    tls = _checked_tls(cfg, f"{key}.tls", address)
    return EngineSettings(
        kind="dask",
        address=address,
        n_workers=WholeNumber(1, unit="workers").check(cfg, f"{key}.n_workers"),
        threads_per_worker=WholeNumber(1, unit="threads").check(cfg, f"{key}.threads_per_worker"),
        memory_limit=memory,
        retries=WholeNumber(0).check(cfg, f"{key}.retries"),
        series_per_task=per_task,
        connect_timeout=WholeNumber(1, unit="seconds").check(cfg, f"{key}.connect_timeout"),
        tls=tls,
    )


def _checked_tls(cfg: DictConfig, key: str, address: str | None) -> dict:
    files = {
        name: ExistingPath("file", nullable=True).check(cfg, f"{key}.{name}", default=None)
        for name in ("ca_file", "cert", "key")
    }
    require = Flag().check(cfg, f"{key}.require_encryption", default=True)
    given = [name for name, path in files.items() if path is not None]
    tls_address = address is not None and address.startswith("tls://")
    if given and address is None:
        raise ConfigError(
            f"{key}.{given[0]} is set but engine.address is null: TLS files are for connecting to a "
            "cluster at a tls:// address; set engine.address=tls://host:port or clear the tls files"
        )
    if given and len(given) < 3:
        missing = next(name for name in files if files[name] is None)
        raise ConfigError(f"{key}.{missing} is missing: TLS needs ca_file, cert and key together")
    if tls_address and not given:
        raise ConfigError(
            f"engine.address={shown(address)} is a TLS address: set {key}.ca_file, {key}.cert and {key}.key"
        )
    if given and not tls_address:
        raise ConfigError(
            f"engine.address={shown(address)} is plain TCP but {key} files are set: use tls://{address[6:]}"
        )
    paths = {name: str(path) if path else None for name, path in files.items()}
    return {**paths, "require_encryption": require}


def _loopback(address: str) -> bool:
    """A scheduler on this machine (tcp://127.0.0.1:8786, tcp://localhost:8786): no other machine writes."""
    host = address.split("://", 1)[1].rsplit(":", 1)[0]
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def current_launcher() -> str | None:
    """The ``_target_`` of the Hydra launcher running this job, or None outside a Hydra run."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().launcher.get("_target_", "")) or None
    except ValueError:  # HydraConfig is not set: a test or a library caller
        return None
