"""The real command line, as a user runs it, against a temporary SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd

from tests.disposition.conftest import ROOT, fast_overrides


def _cli(module: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *args, f"hydra.run.dir={tmp_path / 'run'}"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_train_registers_a_champion_that_recommends_and_explains(tmp_path, calls_path, calls):
    done = _cli("disposition.train", fast_overrides(calls_path, tmp_path / "store"), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "promoted to champion" in done.stdout and "flagged subgroups:" in done.stdout
    assert (tmp_path / "run" / "model_card.md").is_file()

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/disposition-remote-closure@champion")
    request = calls.tail(200).drop(columns=["safe_remote", "p_safe_remote_true"])
    answer = model.predict(request)
    assert answer["recommend_remote"].any() and not answer["recommend_remote"].all()
    served = answer[answer["recommend_remote"]]  # each call against its own (subgroup) threshold
    assert (served["p_safe_remote"] >= served["threshold"]).all()
    assert answer["reasons"].str.contains(r"\((?:raises|lowers)\)").any()


def test_bad_override_and_bad_file_print_one_line(tmp_path, calls):
    typo = _cli("disposition.train", ["classifier=lightgbn"], tmp_path)
    assert typo.returncode != 0 and "logistic" in typo.stderr and "Traceback" not in typo.stderr

    path = tmp_path / "one_class.csv"
    calls.head(500).assign(safe_remote=1).to_csv(path, index=False)
    bad = _cli(
        "disposition.train", [f"calls.path={path}", f"tracking.store_dir={tmp_path / 'store'}"], tmp_path
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    last = [line for line in bad.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: ") and "one class only" in last
    assert not (tmp_path / "store" / "mlflow.db").exists()


def test_generate_writes_calls_and_their_config(tmp_path):
    out = tmp_path / "calls.parquet"
    args = [
        f"counts_path={ROOT / 'data/synthetic/daily_counts.csv'}",
        f"population_path={ROOT / 'data/synthetic/population.csv'}",
        f"world_path={ROOT / 'data/synthetic/world.yaml'}",
        f"output_path={out}",
        "n_calls=3000",
    ]
    done = _cli("disposition.generate", args, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(pd.read_parquet(out)) == 3000 and "remote_share_today" in out.with_suffix(".yaml").read_text()


def test_console_script_finds_its_configs(tmp_path):
    script = Path(sys.executable).with_name("disposition-train")
    assert script.is_file(), "reinstall with `pip install -c constraints.txt -e .[dev]`"
    shown = subprocess.run(
        [str(script), "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "experiment_name: disposition-remote-closure" in shown.stdout
