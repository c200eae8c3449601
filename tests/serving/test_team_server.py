"""Team mode: the pipelines log and register through an MLflow server on PostgreSQL with basic auth,
and a second team member can neither read nor write what the first one made until granted.

The server is started by ``scripts/tracking_server.sh`` (the same script as ``make tracking-server``)
in a temporary folder on free loopback ports, once for the module, and stopped afterwards. Under CI
(``AMBULANCE_CI=1``, set by ``.ci/run``, which installs PostgreSQL) a missing PostgreSQL fails the
test; elsewhere the test is skipped when the PostgreSQL server binaries are absent.

Cross-user writes are sent as raw REST requests (the endpoints MLflow's client calls), so that each
refusal is the write endpoint's own answer rather than that of a read the client makes first.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd
import psycopg2
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, compose_config, fast_forecast_overrides
from tests.disposition.conftest import compose_disposition
from tests.disposition.conftest import fast_overrides as disposition_overrides
from tests.serving.conftest import DISPOSITION, FORECAST, OUTCOMES, free_port, tool_env

SCRIPT = ROOT / "scripts" / "tracking_server.sh"
USER, PASSWORD = "alice", "alice-test-password"
# Added to the running server with `add-user` (password on stdin) and with `start` (environment):
# the characters that used to break the script's hand-written JSON and shell quoting.
BOB, BOB_PASSWORD = "bob", 'bob "quoted" $HOME \\back slash'
CAROL, CAROL_PASSWORD = "carol", "it's 100% c@rol: $(id) `x` \\n"
SERVICE_USER = "mlflow-server"
HAS_POSTGRES = bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or shutil.which("initdb") is not None
UNDER_CI = os.environ.get("AMBULANCE_CI") == "1"
AS_ROOT = os.geteuid() == 0

pytestmark = pytest.mark.skipif(
    not HAS_POSTGRES and not UNDER_CI,
    reason="PostgreSQL server binaries not found (apt-get install postgresql, or run .ci/run as root)",
)


def run_script(
    *args: str, env: dict[str, str], stdin: str | None = None, expect: int = 0
) -> subprocess.CompletedProcess:
    # Generous timeout: under CI, `start` may first install PostgreSQL with apt-get.
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == expect, f"{args} exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def server():
    """A fresh team server with alice (from `start`), bob (`add-user`) and carol (`start` again)."""
    # As root, PostgreSQL and MLflow run as their own users, who cannot enter pytest's private tmp
    # folders.
    state = Path(tempfile.mkdtemp(prefix="ambulance-team-server-"))
    state.chmod(0o755)
    url = f"http://127.0.0.1:{free_port()}"
    base = tool_env(
        AMBULANCE_TRACKING_DIR=str(state),
        MLFLOW_SERVER_PORT=url.rsplit(":", 1)[1],
        AMBULANCE_PG_PORT=str(free_port()),
    )
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "AMBULANCE_DEFAULT_PERMISSION"):
        base.pop(name, None)

    def login(user: str, password: str) -> dict[str, str]:
        return {**base, "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}

    previous_uri = mlflow.get_tracking_uri()
    try:
        started = run_script("start", env=login(USER, PASSWORD))
        # Users added to the server while it runs: by the admin's command, and by `start` again.
        added = run_script("add-user", BOB, env=base, stdin=BOB_PASSWORD + "\n")
        restarted = run_script("start", env=login(CAROL, CAROL_PASSWORD))
        with pytest.MonkeyPatch.context() as patch:
            # What a team member sets in their shell; MLflow's client reads them on every request.
            patch.setenv("MLFLOW_TRACKING_USERNAME", USER)
            patch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
            yield {
                "url": url,
                "state": state,
                "pg_port": base["AMBULANCE_PG_PORT"],
                "env": base,
                "login": login,
                "output": {"start": started.stdout, "add-user": added.stdout, "restart": restarted.stdout},
            }
    finally:
        run_script("stop", env=base)
        mlflow.set_tracking_uri(previous_uri)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    """The forecast model trained against the server as ``alice`` (the disposition model too, in
    test_disposition_registers_on_the_server_and_loads_back, with -m slow)."""
    from forecasting.pipeline import train as train_forecast

    folder = tmp_path_factory.mktemp("team-train")
    counts = pd.read_csv(ROOT / "data" / "synthetic" / "daily_counts.csv", parse_dates=["ds"])
    counts[counts["unique_id"].isin(["city/C2", "moor/C4"])].to_csv(folder / "counts.csv", index=False)
    with pytest.MonkeyPatch.context() as patch:
        # The documented way: the one override `tracking=server`, the address from the environment.
        patch.setenv("MLFLOW_TRACKING_URI", server["url"])
        overrides = fast_forecast_overrides(folder / "counts.csv", folder / "unused-store")
        cfg = compose_config("forecast", [*overrides, "model.n_jobs=1", "tracking=server"])
        assert cfg.tracking.uri == server["url"]
        assert train_forecast(cfg, folder / "forecast").promoted
    return folder


def rest(server, user: str, password: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, server["url"] + path, auth=(user, password), timeout=60, **kwargs)


def artifact_path(uri: str) -> str:
    """The proxy path of an ``mlflow-artifacts:`` URI (what the artifact endpoints take)."""
    assert uri.startswith("mlflow-artifacts:/"), uri
    return uri.removeprefix("mlflow-artifacts:").lstrip("/")


def owned_by_alice(server, client: MlflowClient, model: str) -> dict[str, str]:
    """What alice's champion of ``model`` is made of: experiment, run, version, files."""
    version = client.get_model_version_by_alias(model, "champion")
    run = client.get_run(version.run_id)
    # A version registered from a logged model names it in its source, `models:/<model_id>`.
    model_id = version.model_id or version.source.removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    files = artifact_path(logged.artifact_location)
    return {
        "experiment_id": run.info.experiment_id,
        "experiment": client.get_experiment(run.info.experiment_id).name,
        "run_id": run.info.run_id,
        "run_files": artifact_path(run.info.artifact_uri),
        "model": model,
        "version": version.version,
        "model_id": model_id,
        "model_files": files,
    }


def call(method: str, path: str, **body) -> tuple:
    """A REST request: JSON body fields as keywords (``data=`` and ``params=`` passed as they are)."""
    raw = {key: body.pop(key) for key in ("data", "params") if key in body}
    return (method, path, {**raw, **({"json": body} if body else {})})


def writes(target: dict[str, str]) -> dict[str, tuple]:
    """Every kind of write to another user's experiment, run, registered model and artifacts."""
    e, r, m, v = target["experiment_id"], target["run_id"], target["model"], target["version"]
    now = int(time.time() * 1000)
    api, ui = "/api/2.0/mlflow", "/ajax-api/2.0/mlflow"
    grant = "/api/3.0/mlflow/users/permissions/grant"
    model_files = f"/api/2.0/mlflow-artifacts/artifacts/{target['model_files']}"
    run_files = f"/api/2.0/mlflow-artifacts/artifacts/{target['run_files']}"
    return {
        "create a run in the experiment": call("POST", f"{api}/runs/create", experiment_id=e),
        "rename the experiment": call("POST", f"{api}/experiments/update", experiment_id=e, new_name="bob"),
        "tag the experiment": call(
            "POST", f"{api}/experiments/set-experiment-tag", experiment_id=e, key="k", value="v"
        ),
        "delete the experiment": call("POST", f"{api}/experiments/delete", experiment_id=e),
        "tag the run": call("POST", f"{api}/runs/set-tag", run_id=r, key="k", value="v"),
        "log a metric to the run": call(
            "POST", f"{api}/runs/log-metric", run_id=r, key="mase", value=0.0, timestamp=now
        ),
        "delete the run": call("POST", f"{api}/runs/delete", run_id=r),
        "register a version under the model": call(
            "POST", f"{api}/model-versions/create", name=m, source=f"models:/{target['model_id']}", run_id=r
        ),
        "move the champion alias": call(
            "POST", f"{api}/registered-models/alias", name=m, alias="champion", version=v
        ),
        "delete the champion alias": call(
            "DELETE", f"{api}/registered-models/alias", name=m, alias="champion"
        ),
        "tag the version": call(
            "POST", f"{api}/model-versions/set-tag", name=m, version=v, key="k", value="v"
        ),
        "describe the version": call(
            "PATCH", f"{api}/model-versions/update", name=m, version=v, description="bob"
        ),
        "delete the version": call("DELETE", f"{api}/model-versions/delete", name=m, version=v),
        "tag the model": call("POST", f"{api}/registered-models/set-tag", name=m, key="k", value="v"),
        "rename the model": call("POST", f"{api}/registered-models/rename", name=m, new_name="bobs"),
        "delete the model": call("DELETE", f"{api}/registered-models/delete", name=m),
        "tag the logged model": call(
            "PATCH", f"{api}/logged-models/{target['model_id']}/tags", tags=[{"key": "k", "value": "v"}]
        ),
        "overwrite the model's MLmodel": call("PUT", f"{model_files}/MLmodel", data=b"evil"),
        "add a file to the model": call("PUT", f"{model_files}/python_model.pkl.new", data=b"evil"),
        "delete the model's MLmodel": call("DELETE", f"{model_files}/MLmodel"),
        "upload a file to the run": call("PUT", f"{run_files}/bob.txt", data=b"evil"),
        "upload through the UI endpoint": call(
            "POST", f"{ui}/upload-artifact", params={"run_uuid": r, "path": "bob.txt"}, data=b"evil"
        ),
        "grant itself MANAGE on the experiment": call(
            "POST", grant, username=BOB, resource_type="experiment", resource_id=e, permission="MANAGE"
        ),
        "grant itself MANAGE on the model": call(
            "POST", grant, username=BOB, resource_type="registered_model", resource_id=m, permission="MANAGE"
        ),
    }


def reads(target: dict[str, str]) -> dict[str, tuple]:
    e, r, m = target["experiment_id"], target["run_id"], target["model"]
    api = "/api/2.0/mlflow"
    return {
        "get the experiment": ("GET", f"{api}/experiments/get", {"params": {"experiment_id": e}}),
        "get the run": ("GET", f"{api}/runs/get", {"params": {"run_id": r}}),
        "get the model": ("GET", f"{api}/registered-models/get", {"params": {"name": m}}),
        "get the champion": (
            "GET",
            f"{api}/registered-models/alias",
            {"params": {"name": m, "alias": "champion"}},
        ),
        "download the MLmodel": (
            "GET",
            f"/api/2.0/mlflow-artifacts/artifacts/{target['model_files']}/MLmodel",
            {},
        ),
    }


def answers(server, user: str, password: str, requests_: dict[str, tuple]) -> dict[str, int]:
    return {
        label: rest(server, user, password, m, p, **kw).status_code for label, (m, p, kw) in requests_.items()
    }


def test_pipelines_register_on_the_server_and_models_load_back(server, trained):
    assert not (trained / "unused-store").exists()  # nothing went to a local SQLite file
    mlflow.set_tracking_uri(server["url"])
    client = MlflowClient(server["url"])
    assert client.get_model_version_by_alias(FORECAST, "champion").version == "1"
    forecast = mlflow.pyfunc.load_model(f"models:/{FORECAST}@champion")  # artifacts through the server
    days = pd.DataFrame({"unique_id": ["city/C2"], "ds": pd.to_datetime(["2024-01-01"])})
    assert forecast.predict(days)["mean"].iloc[0] > 0

    # The registry really lives in PostgreSQL, and the artifacts on the server's disk.
    password = (server["state"] / "db_password").read_text().strip()
    with (
        psycopg2.connect(
            host="127.0.0.1", port=server["pg_port"], dbname="mlflow", user="mlflow", password=password
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT name FROM registered_models")
        assert FORECAST in {row[0] for row in cursor.fetchall()}
    assert any((server["state"] / "artifacts").rglob("MLmodel"))


# A second full training through the server (every file it uploads and loads costs the server a
# password hash): the forecast above takes the same tracking and registry path in the default suite.
@pytest.mark.slow
def test_disposition_registers_on_the_server_and_loads_back(server, trained, serving_calls):
    from disposition.pipeline import train as train_disposition

    serving_calls.to_parquet(trained / "calls.parquet", index=False)
    overrides = disposition_overrides(trained / "calls.parquet", trained / "unused-store")
    cfg = compose_disposition([*overrides, "tracking=server", f"tracking.uri={server['url']}"])
    assert train_disposition(cfg, trained / "disposition").promoted
    assert not (trained / "unused-store").exists()
    mlflow.set_tracking_uri(server["url"])
    assert MlflowClient(server["url"]).get_model_version_by_alias(DISPOSITION, "champion").version == "1"
    disposition = mlflow.pyfunc.load_model(f"models:/{DISPOSITION}@champion")
    calls = serving_calls.tail(5).drop(columns=OUTCOMES)
    assert len(disposition.predict(calls, params={"reasons": "none"})) == 5


@pytest.mark.parametrize(
    "login",
    [("mallory", "guess-guess-guess"), (USER, "wrong-password"), None],
    ids=["unknown", "bad-password", "anonymous"],
)
def test_unknown_users_cannot_write(server, login, monkeypatch):
    if login is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", login[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", login[1])
    client = MlflowClient(server["url"])
    with pytest.raises(MlflowException) as refused:
        client.create_experiment(f"intruder-{login and login[0]}")
    assert (
        "401" in str(refused.value)
        or "Unauthorized" in str(refused.value)
        or "credentials" in str(refused.value)
    )


def test_the_creator_owns_experiment_and_model(server, trained):
    target = owned_by_alice(server, MlflowClient(server["url"]), FORECAST)
    admin = (server["state"] / "admin_password").read_text().strip()
    for user, expected in ((USER, "MANAGE"), (BOB, "NO_PERMISSIONS")):
        for rtype, rid in (("experiment", target["experiment_id"]), ("registered_model", FORECAST)):
            answer = rest(
                server, "admin", admin, "GET", "/api/3.0/mlflow/users/permissions/get",
                params={"username": user, "resource_type": rtype, "resource_id": rid},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert answer.json()["permission"] == expected, (user, rtype)


def test_another_user_can_neither_read_nor_write_the_champion(server, trained):
    client = MlflowClient(server["url"])
    target = owned_by_alice(server, client, FORECAST)
    model_file = f"/api/2.0/mlflow-artifacts/artifacts/{target['model_files']}/MLmodel"
    before = rest(server, USER, PASSWORD, "GET", model_file)
    assert before.status_code == 200
    runs_before = len(client.search_runs([target["experiment_id"]]))

    refused = answers(server, BOB, BOB_PASSWORD, {**writes(target), **reads(target)})
    assert {label: code for label, code in refused.items() if code != 403} == {}

    # Nor can bob make the server write his runs' files into her folders: an experiment of his own
    # whose artifact location is inside hers is refused, however the location is spelled.
    inside = server["state"] / "artifacts" / target["model_files"]
    assert inside.is_dir()
    for location in (str(inside), inside.as_uri(), f"mlflow-artifacts:/{target['model_files']}"):
        created = rest(
            server, BOB, BOB_PASSWORD, "POST", "/api/2.0/mlflow/experiments/create",
            json={"name": f"bob-inside-{len(location)}", "artifact_location": location},
        )  # fmt: skip
        assert created.status_code == 403 and "artifact_location is not allowed" in created.text

    # Nothing changed: same experiment name, same champion, one version, the same file.
    assert client.get_experiment(target["experiment_id"]).name == target["experiment"]
    assert client.get_model_version_by_alias(FORECAST, "champion").version == target["version"]
    assert [v.version for v in client.search_model_versions(f"name = '{FORECAST}'")] == ["1"]
    assert rest(server, USER, PASSWORD, "GET", model_file).content == before.content
    runs = client.search_runs([target["experiment_id"]])
    assert len(runs) == runs_before and not any("k" in run.data.tags for run in runs)
    assert "k" not in client.get_registered_model(FORECAST).tags
    # Bob's own client sees none of it either.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", BOB)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", BOB_PASSWORD)
        bob = MlflowClient(server["url"])
        assert target["experiment"] not in {e.name for e in bob.search_experiments()}
        assert FORECAST not in {m.name for m in bob.search_registered_models()}
        with pytest.raises(MlflowException) as error:
            bob.set_registered_model_alias(FORECAST, "champion", target["version"])
        assert error.value.error_code == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    "own_experiment",
    [
        pytest.param(False, id="her-experiment"),
        # Refused only at registration, after a whole run whose uploads each cost the server a
        # password hash: the same refusal by the registry is checked in seconds by
        # test_registering_under_her_model_name_gets_one_line.
        pytest.param(True, id="her-model-name", marks=pytest.mark.slow),
    ],
)
def test_a_second_user_training_under_her_names_gets_one_line(server, trained, own_experiment):
    """Bob runs the documented command with the default names alice's runs already own."""
    from forecasting.pipeline import train as train_forecast
    from mlops.errors import PermissionDeniedError

    client = MlflowClient(server["url"])
    versions = [v.version for v in client.search_model_versions(f"name = '{FORECAST}'")]
    overrides = fast_forecast_overrides(trained / "counts.csv", trained / "unused-store")
    overrides += ["model.n_jobs=1", "tracking=server", f"tracking.uri={server['url']}"]
    if own_experiment:
        overrides.append("experiment_name=bob-forecasts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", BOB)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", BOB_PASSWORD)
        with pytest.raises(PermissionDeniedError) as refused:
            train_forecast(compose_config("forecast", overrides), trained / "bob-forecast")
    message = str(refused.value)
    assert "\n" not in message and "'bob'" in message and BOB_PASSWORD not in message
    key = "registry.model_name" if own_experiment else "experiment_name"
    assert f"{key}=<name>" in message and "grant" in message
    assert [v.version for v in client.search_model_versions(f"name = '{FORECAST}'")] == versions
    assert not (trained / "bob-forecast").exists()


def test_registering_under_her_model_name_gets_one_line(server, trained, tmp_path):
    """Bob's model, logged in an experiment of his own, cannot become a version of alice's model:
    the registry step the apps share (register_and_promote) refuses in one line, registering nothing."""
    from mlops.errors import PermissionDeniedError
    from mlops.registry import PromotionDecision, register_and_promote

    client = MlflowClient(server["url"])
    versions = [v.version for v in client.search_model_versions(f"name = '{FORECAST}'")]
    champion = client.get_model_version_by_alias(FORECAST, "champion").version
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", BOB)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", BOB_PASSWORD)
        mlflow.set_tracking_uri(server["url"])
        bob = MlflowClient(server["url"])
        with mlflow.start_run(experiment_id=bob.create_experiment("bob-registers")):
            logged = mlflow.pyfunc.log_model(
                name="model", python_model=_Constant(), pip_requirements=["mlflow"]
            )
            with pytest.raises(PermissionDeniedError) as refused:
                register_and_promote(
                    bob, logged.model_uri, FORECAST, {}, lambda champion: PromotionDecision(True, "first"),
                    tmp_path / "registry.lock",
                )  # fmt: skip
    message = str(refused.value)
    assert "\n" not in message and "'bob'" in message and BOB_PASSWORD not in message
    assert "registry.model_name=<name>" in message and "grant" in message
    assert [v.version for v in client.search_model_versions(f"name = '{FORECAST}'")] == versions
    assert client.get_model_version_by_alias(FORECAST, "champion").version == champion


def test_the_owner_grants_read_then_edit_with_the_script(server):
    """Alice shares an experiment and a model of hers; bob reads, then edits, never more."""
    client = MlflowClient(server["url"])  # as alice
    experiment = "shared forecasts: alice's"
    experiment_id = client.create_experiment(experiment)
    mlflow.set_tracking_uri(server["url"])
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_text("alice's notes", "notes.txt")
        # Pinned requirements: inferring them would cost seconds and prove nothing here.
        logged = mlflow.pyfunc.log_model(name="model", python_model=_Constant(), pip_requirements=["mlflow"])
    model = "alice-shared-model"
    version = mlflow.register_model(logged.model_uri, model)
    client.set_registered_model_alias(model, "champion", version.version)
    target = owned_by_alice(server, client, model)
    alice = server["login"](USER, PASSWORD)

    assert set(answers(server, BOB, BOB_PASSWORD, reads(target)).values()) == {403}

    granted = [
        run_script("grant", BOB, "read", "experiment", experiment, env=alice).stdout,
        run_script("grant", BOB, "read", "model", model, env=alice).stdout,
    ]
    assert granted == [
        f"tracking-server: as alice: granted bob's permission on experiment {experiment!r} "
        f"(id {experiment_id}) to READ\n",
        f"tracking-server: as alice: granted bob's permission on model {model!r} to READ\n",
    ]
    assert answers(server, BOB, BOB_PASSWORD, reads(target)) == dict.fromkeys(reads(target), 200)
    allowed = {
        label: code
        for label, code in answers(server, BOB, BOB_PASSWORD, writes(target)).items()
        if code != 403
    }
    assert allowed == {}, "READ must not allow any write"

    changed = run_script("grant", BOB, "edit", "experiment", experiment, env=alice).stdout
    assert "changed bob's permission on experiment" in changed and changed.endswith("to EDIT\n")
    run_script("grant", BOB, "edit", "model", model, env=alice)
    edits = {
        label: writes(target)[label]
        for label in (
            "create a run in the experiment",
            "tag the run",
            "upload a file to the run",
            "tag the version",
            "move the champion alias",
        )
    }
    assert answers(server, BOB, BOB_PASSWORD, edits) == dict.fromkeys(edits, 200)
    # EDIT is not MANAGE: no deleting, no granting.
    owner_only = {
        label: writes(target)[label]
        for label in ("delete the model", "delete the experiment", "grant itself MANAGE on the model")
    }
    assert answers(server, BOB, BOB_PASSWORD, owner_only) == dict.fromkeys(owner_only, 403)
    bob = server["login"](BOB, BOB_PASSWORD)
    denied = run_script("grant", BOB, "manage", "model", model, env=bob, expect=1)
    assert "'bob' is not allowed" in denied.stderr and BOB_PASSWORD not in denied.stderr

    revoked = run_script("revoke", BOB, "model", model, env=alice).stdout
    assert revoked == f"tracking-server: as alice: revoked bob's permission on model {model!r}\n"
    assert (
        rest(
            server, BOB, BOB_PASSWORD, "GET", "/api/2.0/mlflow/registered-models/get", params={"name": model}
        ).status_code
        == 403
    )


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def test_users_are_added_to_a_running_server_whatever_their_password(server):
    assert "tracking-server: created user alice\n" in server["output"]["start"]
    assert server["output"]["add-user"] == "tracking-server: created user bob\n"
    restarted = server["output"]["restart"]
    assert "MLflow already runs" in restarted and "tracking-server: created user carol\n" in restarted
    again = run_script("add-user", BOB, env=server["env"], stdin=BOB_PASSWORD)
    assert again.stdout == "tracking-server: user bob exists already (password unchanged)\n"
    for user, password in ((BOB, BOB_PASSWORD), (CAROL, CAROL_PASSWORD)):
        created = rest(
            server, user, password, "POST", "/api/2.0/mlflow/experiments/create", json={"name": f"{user}-own"}
        )
        assert created.status_code == 200, created.text
    short = run_script("add-user", "dave", env=server["env"], stdin="short\n", expect=1)
    assert "at least 12 characters" in short.stderr


def test_the_script_refuses_bad_requests_in_one_line(server):
    alice = server["login"](USER, PASSWORD)
    MlflowClient(server["url"]).create_registered_model("alice-refusals")  # as alice, who owns it
    cases = {
        ("grant", BOB, "write", "experiment", "x"): "unknown permission 'write': use read, edit or manage",
        ("grant", "nobody", "read", "model", "alice-refusals"): "no user 'nobody'",
        ("grant", BOB, "read", "model", "no-such-model"): "may not read a model named 'no-such-model'",
        ("grant", BOB, "read", "bucket", "x"): "unknown kind 'bucket': use experiment or model",
    }
    for args, message in cases.items():
        done = run_script(*args, env=alice, expect=1)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    pid = (server["state"] / "mlflow.pid").read_text()
    editable = run_script("start", env={**server["env"], "AMBULANCE_DEFAULT_PERMISSION": "EDIT"}, expect=1)
    assert "AMBULANCE_DEFAULT_PERMISSION=EDIT is not allowed" in editable.stderr
    assert (server["state"] / "mlflow.pid").read_text() == pid


def _server_processes(server) -> list[tuple[str, str]]:
    """(user, command line) of MLflow's processes (its process group) and of PostgreSQL's."""
    pgid = (server["state"] / "mlflow.pid").read_text().strip()
    listing = subprocess.run(
        ["ps", "-eo", "pgid=,user:32=,args="], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(None, 2) for line in listing.splitlines() if len(line.split(None, 2)) == 3]
    mlflow_rows = [(user, args) for group, user, args in rows if group == pgid]
    postgres_rows = [
        (user, args) for _, user, args in rows if args.startswith(("postgres", "/usr/lib/postgresql"))
    ]
    assert mlflow_rows and postgres_rows
    return mlflow_rows + postgres_rows


def _secrets(server) -> list[str]:
    state = server["state"]
    stored = [
        (state / name).read_text().strip() for name in ("db_password", "admin_password", "flask_secret_key")
    ]
    return [*stored, PASSWORD, BOB_PASSWORD, CAROL_PASSWORD]


def test_no_password_on_any_command_line_and_nothing_runs_as_root(server, trained):
    listing = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=True).stdout
    for secret in _secrets(server):
        assert secret not in listing
    for user, args in _server_processes(server):
        assert user != "root", args
        if AS_ROOT:
            assert user in (SERVICE_USER, "postgres"), (user, args)


def test_secrets_live_only_in_owner_only_files(server, trained):
    state = server["state"]
    secrets = _secrets(server)
    for path in state.iterdir():
        if path.is_file():
            text = path.read_text(errors="replace")
            if any(secret in text for secret in secrets):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    for name in ("db_password", "admin_password", "flask_secret_key", "pgpass", "basic_auth.ini"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    if AS_ROOT:
        for name in ("pgpass", "basic_auth.ini"):
            assert (state / name).owner() == SERVICE_USER, name
    assert not any(secret in (state / "basic_auth.ini").read_text() for secret in secrets)
    assert not any(secret in (state / "mlflow.log").read_text() for secret in secrets)
    assert "NO_PERMISSIONS" in (state / "basic_auth.ini").read_text()


@pytest.mark.slow  # restarts the server; the per-resource READ grant above is the same permission
def test_a_read_default_lets_everyone_read_and_still_nobody_write(server, trained):
    """``AMBULANCE_DEFAULT_PERMISSION=READ``: bob reads alice's champion, and writes nothing of it.

    Runs last: it restarts the module's server with the other default.
    """
    client = MlflowClient(server["url"])
    target = owned_by_alice(server, client, FORECAST)
    run_script("stop", env=server["env"])
    started = run_script("start", env={**server["env"], "AMBULANCE_DEFAULT_PERMISSION": "READ"})
    assert "default permission READ" in started.stdout
    assert answers(server, BOB, BOB_PASSWORD, reads(target)) == dict.fromkeys(reads(target), 200)
    allowed = {
        label: code
        for label, code in answers(server, BOB, BOB_PASSWORD, writes(target)).items()
        if code != 403
    }
    assert allowed == {}, "a READ default must not allow any write"
    assert client.get_model_version_by_alias(FORECAST, "champion").version == target["version"]
