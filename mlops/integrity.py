"""SHA-256 manifests of registered models, and a loader that refuses a model whose files changed.

A registered model is a folder of files (MLmodel, pickles, the toolkit's code) that services load
and run. Anyone who can write to the artifact store can change them after registration; the
registry itself never notices. So each version records, when it is registered, a manifest (the
SHA-256 of every file, by path inside the model folder) and the digest of that manifest, as
model-version tags:

- ``integrity.manifest_sha256``: SHA-256 of the manifest's canonical JSON (always present);
- ``integrity.manifest``: the manifest JSON itself, when it fits a registry tag, else
- ``integrity.manifest_artifact``: the run artifact holding it (``integrity/<model id>.json``).

:func:`load_verified_model` downloads the version, recomputes the manifest, compares it with the
recorded one (whose own digest must match the tag) and only then loads the pyfunc from that same
verified local copy, so what was checked is what runs.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops.errors import UserInputError

DIGEST_TAG = "integrity.manifest_sha256"
MANIFEST_TAG = "integrity.manifest"
MANIFEST_ARTIFACT_TAG = "integrity.manifest_artifact"
# Written by MLflow's own downloader of registered models on the caller's side (model name and
# version), never read from the store: it differs between the logged and the registered URI.
LOCAL_ONLY = {"registered_model_meta"}
# MLflow 3.17 accepts model-version tag values up to 100,000 characters; keep a margin.
MAX_TAG_CHARS = 90_000

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


class ModelIntegrityError(UserInputError):
    """A registered model's files do not match the manifest recorded when it was registered."""


def file_manifest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, keyed by its POSIX path relative to ``folder``.

    MLflow's download note ``registered_model_meta`` (written locally, see ``LOCAL_ONLY``) is left out.
    """
    folder = Path(folder)
    manifest = {}
    files = (p for p in folder.rglob("*") if p.is_file())
    for path in sorted(p for p in files if p.relative_to(folder).as_posix() not in LOCAL_ONLY):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        manifest[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return manifest


def manifest_digest(manifest: dict[str, str]) -> str:
    """SHA-256 of the manifest's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(_canonical(manifest).encode()).hexdigest()


def manifest_tags(model_uri: str, tracking_uri: str | None = None) -> dict[str, str]:
    """The integrity tags for the logged model at ``model_uri``, computed from its stored files.

    The files are downloaded from the artifact store (not taken from the local folder they were
    written from), so the manifest describes exactly what a service will download. Call inside
    the run that logged the model: a manifest too long for a tag is logged as a run artifact.
    """
    with tempfile.TemporaryDirectory(prefix="manifest-") as tmp:
        local = _download(model_uri, tmp, tracking_uri)
        manifest = file_manifest(Path(local))
    text = _canonical(manifest)
    tags = {DIGEST_TAG: manifest_digest(manifest)}
    if len(text) <= MAX_TAG_CHARS:
        tags[MANIFEST_TAG] = text
    else:
        name = f"{model_uri.rstrip('/').rsplit('/', 1)[-1]}.json"
        mlflow.log_text(text, f"integrity/{name}")
        tags[MANIFEST_ARTIFACT_TAG] = f"integrity/{name}"
    return tags


def resolve_version(model_uri: str, client: MlflowClient) -> ModelVersion:
    """The registered version a ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` URI names."""
    match = _REGISTRY_URI.match(model_uri)
    if match is None:
        raise ModelIntegrityError(
            f"cannot verify {model_uri!r}: only registered models carry a manifest; "
            "use models:/<name>@<alias> or models:/<name>/<version>"
        )
    name = match["name"]
    try:
        if match["alias"]:
            return client.get_model_version_by_alias(name, match["alias"])
        return client.get_model_version(name, match["version"])
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise  # a store that cannot be reached is not a missing model
        raise ModelIntegrityError(f"cannot find {model_uri} in the registry: {error.message}") from error


def verify_model(
    model_uri: str, tracking_uri: str | None = None, dst_path: Path | None = None
) -> tuple[ModelVersion, Path]:
    """Download the registered model named by ``model_uri`` and check it against its manifest.

    Returns
    -------
    (ModelVersion, Path)
        The version checked and the local folder holding its verified files.

    Raises
    ------
    ModelIntegrityError
        The version has no manifest, the manifest does not match its recorded digest, or a file
        was changed, added or removed since registration (the message names the first one).
    """
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    version = resolve_version(model_uri, client)
    label = f"{version.name} v{version.version}"
    expected = _recorded_manifest(version, client, label)
    if dst_path is None:
        folder = _private_dir()
    else:  # a fresh folder inside: files left by an earlier download must not count as added
        Path(dst_path).mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="verified-", dir=dst_path))
    # The number, not the alias: an alias moving meanwhile must not swap the files under the check.
    local = _download(f"models:/{version.name}/{version.version}", str(folder), tracking_uri)
    actual = file_manifest(Path(local))
    if actual != expected:
        raise ModelIntegrityError(
            f"model {label} ({model_uri}) does not match the manifest recorded at registration: "
            f"{_first_difference(expected, actual)}; do not serve it: re-register it from a trusted run"
        )
    return version, Path(local)


def load_verified_model(model_uri: str, tracking_uri: str | None = None, dst_path: Path | None = None):
    """Load a registered pyfunc only after its files match the manifest recorded at registration.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.
    tracking_uri : str, optional
        Store holding the registry (default: MLflow's current tracking URI).
    dst_path : Path, optional
        Folder to download into (a fresh sub-folder is made in it); default a private temporary
        folder removed at exit.

    Returns
    -------
    mlflow.pyfunc.PyFuncModel
        Loaded from the verified local copy.

    Raises
    ------
    ModelIntegrityError
        See :func:`verify_model`.
    """
    _, local = verify_model(model_uri, tracking_uri, dst_path)
    return mlflow.pyfunc.load_model(str(local))


def _recorded_manifest(version: ModelVersion, client: MlflowClient, label: str) -> dict[str, str]:
    tags = version.tags or {}
    digest = tags.get(DIGEST_TAG)
    if not digest:
        raise ModelIntegrityError(
            f"model {label} has no integrity manifest (tag {DIGEST_TAG}): it was registered before "
            "manifests were recorded or by other tools; re-register it with the toolkit's training command"
        )
    if MANIFEST_TAG in tags:
        text = tags[MANIFEST_TAG]
    elif MANIFEST_ARTIFACT_TAG in tags:
        with tempfile.TemporaryDirectory(prefix="manifest-") as tmp:
            path = client.download_artifacts(version.run_id, tags[MANIFEST_ARTIFACT_TAG], tmp)
            text = Path(path).read_text()
    else:
        raise ModelIntegrityError(f"model {label} records a manifest digest but no manifest: re-register it")
    manifest = json.loads(text)
    if manifest_digest(manifest) != digest:
        raise ModelIntegrityError(
            f"model {label}: its recorded manifest does not match the digest in tag {DIGEST_TAG}; "
            "do not serve it: re-register the model from a trusted run"
        )
    return manifest


def _first_difference(expected: dict[str, str], actual: dict[str, str]) -> str:
    for path in sorted(set(expected) | set(actual)):
        if path not in actual:
            return f"file {path} is missing"
        if path not in expected:
            return f"file {path} was added"
        if expected[path] != actual[path]:
            return f"file {path} was changed (SHA-256 {actual[path][:12]}, registered {expected[path][:12]})"
    return "no difference"  # pragma: no cover - only called when the manifests differ


@contextmanager
def _quiet() -> Iterator[None]:
    """No per-file progress bars: a job's console output is for what the user must read."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _download(model_uri: str, dst_path: str, tracking_uri: str | None) -> str:
    """Download a ``models:/`` URI from the store at ``tracking_uri``.

    MLflow's own resolution of ``models:/`` URIs reads the process-wide registry URI whatever
    store is passed, so the storage location is looked up here with a client of the right store.
    """
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    path = model_uri[len("models:/") :].strip("/")
    if "/" in path:
        name, version = path.split("/", 1)
        location = client.get_model_version_download_uri(name, version)
    else:
        location = client.get_logged_model(path).artifact_location
    with _quiet():
        return mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=dst_path, tracking_uri=tracking_uri
        )


def _canonical(manifest: dict[str, str]) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))


def _private_dir() -> Path:
    # Kept for the life of the process: the loaded model may read its files (and its code
    # folders are on sys.path) after loading.
    folder = Path(tempfile.mkdtemp(prefix="verified-model-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
