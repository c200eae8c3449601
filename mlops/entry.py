"""What every Hydra entry point shares: where the config tree is."""

from pathlib import Path

# Absolute, because Hydra resolves a relative config_path against the calling module only when
# it runs as `python -m ...`; console scripts (forecast-train, ...) import the module instead.
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
