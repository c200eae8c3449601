"""The engine group: defaults compose, bad values are one-line refusals, multi-machine runs need the
team tracking server. No cluster is started here."""

from __future__ import annotations

import pytest

from mlops.engine import EngineSettings, LocalEngine, start_engine
from mlops.engine_checks import check_engine
from mlops.errors import ConfigError
from tests.conftest import compose_config


def test_the_default_engine_is_local_and_runs_the_plain_loop():
    cfg = compose_config("forecast", [])
    settings = check_engine(cfg)
    assert settings == EngineSettings(kind="local")
    with start_engine(settings) as engine:
        assert isinstance(engine, LocalEngine)
        assert engine.map(lambda task, add: task + add, [1, 2], {"add": 10}) == [11, 12]


def test_engine_dask_composes_to_a_local_cluster():
    settings = check_engine(compose_config("forecast", ["engine=dask"]))
    assert (settings.kind, settings.address, settings.n_workers, settings.memory_limit) == (
        "dask",
        None,
        2,
        "4GiB",
    )
    assert settings.series_per_task == 250 and settings.tls["ca_file"] is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("engine.kind=spark", "engine.kind=spark: must be one of local, dask"),
        ("engine.n_workers=0", "engine.n_workers=0: must be a whole number of workers >= 1"),
        ("engine.memory_limit=lots", "engine.memory_limit=lots: must be a size per worker"),
        ("engine.series_per_task=0", "engine.series_per_task=0: must be a whole number of series >= 1"),
        ("engine.address=scheduler:8786", "engine.address=scheduler:8786: must be a scheduler address"),
        (
            "engine.address=tls://127.0.0.1:8786",
            "engine.address=tls://127.0.0.1:8786 is a TLS address: set engine.tls.ca_file",
        ),
        ("engine.tls.cert=pyproject.toml", "engine.tls.cert is set but engine.address is null"),
        ("engine.tls.ca_file=/no/such.pem", "engine.tls.ca_file=/no/such.pem: no such file"),
        ("engine.retries=-1", "engine.retries=-1: must be a whole number >= 0"),
    ],
)
def test_bad_engine_values_are_refused_in_one_line(override, message):
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.")) as error:
        check_engine(compose_config("forecast", ["engine=dask", override]))
    assert "\n" not in str(error.value)


def test_other_machines_need_the_team_tracking_server():
    remote = ["engine=dask", "engine.address=tcp://10.0.0.5:8786"]
    with pytest.raises(ConfigError, match="must log to the team tracking server.*tracking=server"):
        check_engine(compose_config("forecast", remote))
    with pytest.raises(ConfigError, match="^hydra/launcher=submitit_slurm runs on other machines"):
        check_engine(
            compose_config("forecast", []), launcher="hydra_plugins.hydra_submitit_launcher.SlurmLauncher"
        )
    settings = check_engine(compose_config("forecast", [*remote, "tracking=server"]))
    assert settings.address == "tcp://10.0.0.5:8786"
    # A scheduler on this machine is no other machine: the SQLite store is fine.
    assert check_engine(compose_config("forecast", ["engine=dask", "engine.address=tcp://127.0.0.1:8786"]))
