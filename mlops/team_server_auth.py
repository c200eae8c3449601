"""Login check of the team tracking server: MLflow's basic auth plus one rule MLflow lacks.

``scripts/tracking_server.sh`` names :func:`authenticate_request` as the auth app's
``authorization_function``; MLflow calls it on every request, before its own permission checks.

The rule: only the admin may choose where a new experiment keeps its artifacts. MLflow accepts any
``artifact_location`` from any user, and the server, which stores artifacts on its own disk, writes
the uploads of that experiment's runs to it, checking only the new experiment's permissions (its
creator's own). A location inside another user's experiment folder would let that user add files to
their runs and to the folder of a registered model, which every service loading ``@champion``
downloads. Without a location, MLflow gives each experiment its own folder.
"""

from __future__ import annotations

import json

from flask import Response, request
from mlflow.server.auth import authenticate_request_basic_auth, store

_CREATE_EXPERIMENT = "/mlflow/experiments/create"  # under /api/2.0 and /ajax-api/2.0


def authenticate_request():
    """MLflow's basic-auth result, or 403 for a non-admin's experiment with its own location."""
    authorization = authenticate_request_basic_auth()
    if isinstance(authorization, Response):
        return authorization
    if request.method != "POST" or not request.path.endswith(_CREATE_EXPERIMENT):
        return authorization
    # force: MLflow's handler reads the body as JSON whatever its Content-Type, so must this check.
    body = request.get_json(force=True, silent=True)
    location = body.get("artifact_location") if isinstance(body, dict) else None
    if location and not store.get_user(authorization.username).is_admin:
        message = (
            "artifact_location is not allowed: the server keeps each experiment's artifacts in "
            "its own folder; create the experiment without it (only the admin may set one)"
        )
        return Response(
            json.dumps({"error_code": "PERMISSION_DENIED", "message": message}),
            status=403,
            mimetype="application/json",
        )
    return authorization
