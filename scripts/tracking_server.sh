#!/usr/bin/env bash
# A team MLflow tracking server: PostgreSQL for runs, registry and users, artifacts on local disk
# served through MLflow, MLflow's basic authentication with least privilege. Loopback only.
#
#   scripts/tracking_server.sh start       install PostgreSQL if missing (as root), start it and MLflow;
#                                          with MLFLOW_TRACKING_USERNAME/PASSWORD set, also create
#                                          that user (on a running server too)
#   scripts/tracking_server.sh stop        stop both
#   scripts/tracking_server.sh status      say what runs, and as which system user
#   scripts/tracking_server.sh install     only install PostgreSQL if missing (as root; what .ci/run does)
#   scripts/tracking_server.sh add-user <user>        create a team user; password read from stdin
#   scripts/tracking_server.sh set-password <user>    change a user's password (read from stdin)
#   scripts/tracking_server.sh grant <user> <read|edit|manage> <experiment|model> <name>
#   scripts/tracking_server.sh revoke <user> <experiment|model> <name>
#
# Who may do what: a user sees and changes only what they created (MLflow makes the creator of an
# experiment or registered model its MANAGE owner) plus what its owner granted them; everything
# else is refused (default permission NO_PERMISSIONS), and only the admin may give an experiment
# its own artifact location (mlops/team_server_auth.py). `grant` and `revoke` act as
# MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD when set (an owner sharing their own
# experiment or model), otherwise as the admin (password in <dir>/admin_password).
#
# Settings (environment):
#   AMBULANCE_TRACKING_DIR   state folder: database cluster, artifacts, secrets, logs (default mlruns/server)
#   MLFLOW_SERVER_PORT       MLflow's port (default 5000);  AMBULANCE_PG_PORT  PostgreSQL's (default 5433)
#   AMBULANCE_ADMIN_PASSWORD the admin's password when the server is first created (default:
#                            generated once, kept in <dir>/admin_password)
#   AMBULANCE_DEFAULT_PERMISSION  NO_PERMISSIONS (default) or READ: what a user may do with
#                            experiments and models nobody granted them. READ lets every user
#                            compare everyone's runs (and download their artifacts); never EDIT.
#   AMBULANCE_SERVICE_USER   system user MLflow runs as when the script runs as root (default mlflow-server)
#
# Secrets never appear on a command line (they travel in environment variables and on stdin) and
# live only in files readable by their owner: <dir>/db_password, admin_password, flask_secret_key
# (the invoking user, 0600), <dir>/pgpass (the service user, 0600; the database URIs carry no
# password, libpq reads it from this file through PGPASSFILE).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$(mkdir -p "${AMBULANCE_TRACKING_DIR:-$ROOT/mlruns/server}" && cd "${AMBULANCE_TRACKING_DIR:-$ROOT/mlruns/server}" && pwd)"
MLFLOW_PORT="${MLFLOW_SERVER_PORT:-5000}"
PG_PORT="${AMBULANCE_PG_PORT:-5433}"
VENV_BIN="${AMBULANCE_VENV_BIN:-$ROOT/.venv/bin}"
SERVICE_USER="${AMBULANCE_SERVICE_USER:-mlflow-server}"
PGDATA="$STATE/pgdata"
SOCKETS="$STATE/sockets"
URL="http://127.0.0.1:$MLFLOW_PORT"
export MLFLOW_DISABLE_TELEMETRY="${MLFLOW_DISABLE_TELEMETRY:-true}"

say() { echo "tracking-server: $*"; }
die() { echo "tracking-server: error: $*" >&2; exit 1; }
is_root() { [[ "$(id -u)" == 0 ]]; }

default_permission() {
    local wanted="${AMBULANCE_DEFAULT_PERMISSION:-NO_PERMISSIONS}"
    case "${wanted^^}" in
        NO_PERMISSIONS | NONE) echo NO_PERMISSIONS ;;
        READ) echo READ ;;
        *) die "AMBULANCE_DEFAULT_PERMISSION=$wanted is not allowed: use NO_PERMISSIONS (default) or READ (a default that can write would let every user change everyone's experiments and models)" ;;
    esac
}

pg_bin() {
    # Debian keeps the server binaries out of PATH, one folder per major version.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
    return 1
}

ensure_postgres_installed() {
    pg_bin >/dev/null && return
    is_root || die "PostgreSQL is not installed; run as root or: sudo apt-get install -y postgresql"
    say "installing PostgreSQL (Debian package postgresql)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    say "installed PostgreSQL"
}

# PostgreSQL refuses to run as root: as root, run its commands as the package's postgres user.
as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# MLflow never runs as root: as root, run it as an unprivileged system user without a login.
ensure_service_user() {
    is_root || return 0
    id -u "$SERVICE_USER" >/dev/null 2>&1 && return
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$SERVICE_USER"
    say "created system user $SERVICE_USER (no login; MLflow runs as it)"
}

as_service() {
    if is_root; then
        setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups --no-new-privs -- "$@"
    else
        "$@"
    fi
}

secret() {  # a password kept in the state folder (owner only), generated on first use
    local file="$STATE/$1"
    if [[ ! -s "$file" ]]; then
        (umask 077 && "$VENV_BIN/python" -c 'import secrets; print(secrets.token_urlsafe(24))' >"$file")
    fi
    chmod 600 "$file"
    cat "$file"
}

can_run() {
    # Whether the service user can run this interpreter the way MLflow does (it starts its workers
    # with sys.executable): the resolved file must be reachable, and a child must start.
    as_service test -x "$(readlink -f "$1")" 2>/dev/null \
        && as_service "$1" -c 'import subprocess, sys; sys.exit(subprocess.call([sys.executable, "-c", ""]))' 2>/dev/null
}

service_python() {
    # The interpreter MLflow runs with. The project's own one, when the service user may run it;
    # a pyenv or similar under /root is out of its reach, and then a small virtual environment
    # made from the system Python of the same version, which loads the project's packages, is.
    local py="$VENV_BIN/python"
    if ! is_root || can_run "$py"; then echo "$py"; return; fi
    local version site candidate runtime="$STATE/runtime"
    version="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    for candidate in "/usr/bin/python$version" "/usr/local/bin/python$version" ""; do
        [[ -n "$candidate" && -x "$candidate" ]] && can_run "$candidate" && break
    done
    [[ -n "$candidate" ]] || die "user $SERVICE_USER cannot run $py, and there is no system python$version it can run: install python$version (apt-get install python3) or point AMBULANCE_VENV_BIN at an environment outside /root"
    if [[ ! -x "$runtime/bin/python" ]]; then
        "$candidate" -m venv --without-pip "$runtime" \
            || die "could not create $runtime with $candidate -m venv (apt-get install python3-venv)"
        say "created $runtime ($candidate with the project's packages) for $SERVICE_USER" >&2
    fi
    # A .pth line starting with `import` runs at start-up; addsitedir also reads the project's own .pth files.
    printf 'import site; site.addsitedir(%s)\n' "$("$py" -c 'import sys; print(repr(sys.argv[1]))' "$site")" \
        >"$runtime/lib/python$version/site-packages/_ambulance_project.pth"
    echo "$runtime/bin/python"
}

start_postgres() {
    local bin
    bin="$(pg_bin)"
    mkdir -p "$PGDATA" "$SOCKETS"
    chmod 700 "$PGDATA" "$SOCKETS"
    if is_root; then
        chown postgres: "$PGDATA" "$SOCKETS"
        runuser -u postgres -- test -x "$PGDATA" \
            || die "the postgres user cannot reach $PGDATA: choose AMBULANCE_TRACKING_DIR in a folder others may enter"
    fi
    if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
        # Local socket (folder only its owner can open) trusted; TCP needs a password.
        as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
        say "created the database cluster in $PGDATA"
    fi
    if as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        say "PostgreSQL already runs on 127.0.0.1:$PG_PORT"
    else
        as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start \
            -o "-p $PG_PORT -k $SOCKETS -c listen_addresses=127.0.0.1" >/dev/null
        say "started PostgreSQL on 127.0.0.1:$PG_PORT as user $(as_pg id -un)"
    fi
    local db_password psql=("$bin/psql" -h "$SOCKETS" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
    db_password="$(secret db_password)"
    # The password goes to psql on stdin, never as an argument; re-set on every start so that the
    # role always matches the file.
    if [[ "$(as_pg "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'mlflow'")" != 1 ]]; then
        as_pg "${psql[@]}" <<<"CREATE ROLE mlflow LOGIN PASSWORD '${db_password//\'/\'\'}'"
        say "created database role mlflow"
    else
        as_pg "${psql[@]}" <<<"ALTER ROLE mlflow PASSWORD '${db_password//\'/\'\'}'"
    fi
    for db in mlflow mlflow_auth; do
        if [[ "$(as_pg "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
            as_pg "${psql[@]}" -c "CREATE DATABASE $db OWNER mlflow"
            say "created database $db"
        fi
    done
}

owned_by_service() {  # file or folder to the service user, owner only
    if is_root; then chown "$SERVICE_USER:" "$1"; fi
    chmod "$2" "$1"
}

write_service_files() {
    local db_password escaped
    db_password="$(secret db_password)"
    # pgpass syntax: ':' and '\' escaped with '\'. libpq ignores the file unless it is 0600.
    escaped="${db_password//\\/\\\\}"
    escaped="${escaped//:/\\:}"
    (umask 077 && printf '127.0.0.1:%s:*:mlflow:%s\n' "$PG_PORT" "$escaped" >"$STATE/pgpass")
    owned_by_service "$STATE/pgpass" 600
    # The auth app's settings; no secret in it (the admin password reaches MLflow in its
    # environment, the database password through pgpass), still owner-only. The login check is
    # MLflow's basic auth plus the rule that only the admin chooses an experiment's artifact
    # location (mlops/team_server_auth.py says why).
    (umask 077 && cat >"$STATE/basic_auth.ini" <<EOF
[mlflow]
default_permission = $(default_permission)
database_uri = postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow_auth
admin_username = admin
authorization_function = mlops.team_server_auth:authenticate_request
grant_default_workspace_access = false
EOF
    )
    owned_by_service "$STATE/basic_auth.ini" 600
    mkdir -p "$STATE/artifacts" "$STATE/home"
    if is_root && [[ "$(stat -c %U "$STATE/artifacts")" != "$SERVICE_USER" ]]; then
        chown -R "$SERVICE_USER:" "$STATE/artifacts"
    fi
    owned_by_service "$STATE/artifacts" 700
    owned_by_service "$STATE/home" 700
}

mlflow_pid() { [[ -s "$STATE/mlflow.pid" ]] && kill -0 "$(cat "$STATE/mlflow.pid")" 2>/dev/null && cat "$STATE/mlflow.pid"; }

start_mlflow() {
    local pid
    if pid="$(mlflow_pid)"; then
        local running
        running="$(sed -n 's/^default_permission = //p' "$STATE/basic_auth.ini" 2>/dev/null || true)"
        say "MLflow already runs on $URL (pid $pid, default permission $running)"
        if [[ "$running" != "$(default_permission)" ]]; then
            say "default permission stays $running until: scripts/tracking_server.sh stop && scripts/tracking_server.sh start"
        fi
        return
    fi
    ensure_service_user
    local py
    py="$(service_python)"
    # The login check (mlops/team_server_auth.py) is the project's own code: the service user
    # must be able to read the project and its environment.
    as_service "$py" -c 'import mlflow.server.auth, psycopg2, mlops.team_server_auth' 2>/dev/null \
        || die "user $SERVICE_USER cannot import MLflow and the project's mlops package with $py: make $ROOT and its .venv readable by others (chmod o+rX on the folders above them too)"
    write_service_files
    local admin_password flask_key
    # The admin is created once, with the password of this file (AMBULANCE_ADMIN_PASSWORD when the
    # file does not exist yet, else a generated one).
    if [[ -n "${AMBULANCE_ADMIN_PASSWORD:-}" && ! -s "$STATE/admin_password" ]]; then
        (umask 077 && printf '%s\n' "$AMBULANCE_ADMIN_PASSWORD" >"$STATE/admin_password")
    fi
    admin_password="$(secret admin_password)"
    flask_key="$(secret flask_secret_key)"
    local run=("$py" -m mlflow server --app-name basic-auth
        --backend-store-uri "postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow"
        --artifacts-destination "$STATE/artifacts" --serve-artifacts
        --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 2)
    is_root && run=(setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups --no-new-privs -- "${run[@]}")
    # Secrets in the environment only (/proc/<pid>/environ is readable by the process's own user
    # and root, unlike its command line). The auth app's CSRF protection needs a key that stays
    # the same across restarts and workers.
    (umask 077 && : >"$STATE/mlflow.log")
    # MLflow's job runner (GenAI scorers, trace roll-ups; eight worker processes) serves nothing
    # this toolkit uses.
    HOME="$STATE/home" PGPASSFILE="$STATE/pgpass" MLFLOW_AUTH_CONFIG_PATH="$STATE/basic_auth.ini" \
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}" \
        MLFLOW_AUTH_ADMIN_PASSWORD="$admin_password" \
        MLFLOW_FLASK_SERVER_SECRET_KEY="$flask_key" \
        setsid "${run[@]}" >>"$STATE/mlflow.log" 2>&1 </dev/null &
    echo $! >"$STATE/mlflow.pid"
    for _ in $(seq 240); do
        if curl -sf -o /dev/null "$URL/health"; then break; fi
        if ! mlflow_pid >/dev/null; then
            echo "tracking-server: error: MLflow failed to start:" >&2
            tail -n 30 "$STATE/mlflow.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    curl -sf -o /dev/null "$URL/health" || { echo "tracking-server: error: no answer from $URL:" >&2; tail -n 30 "$STATE/mlflow.log" >&2; exit 1; }
    say "started MLflow on $URL as user $(ps -o user= -p "$(cat "$STATE/mlflow.pid")"), default permission $(default_permission); admin password in $STATE/admin_password"
}

# The REST calls to MLflow's auth API, in Python's standard library so that a password of any
# characters goes into a JSON body or an Authorization header, never into a command line. Who
# acts: AMBULANCE_API_USER / AMBULANCE_API_PASSWORD; a new password: AMBULANCE_API_NEW_PASSWORD.
read -r -d '' API_PY <<'PY' || true
import base64, json, os, sys, urllib.error, urllib.parse, urllib.request

url, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
actor = os.environ["AMBULANCE_API_USER"]

def call(method, path, body=None, *, user=actor, password=None):
    password = os.environ["AMBULANCE_API_PASSWORD"] if password is None else password
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={
        "Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, {"message": text.strip()[:200]}

def fail(message):
    print(f"tracking-server: error: {message}", file=sys.stderr)
    sys.exit(1)

def check(status, body, doing):
    if status == 200:
        return body
    if status == 401:
        fail(f"{doing}: the server refused the login of '{actor}' (wrong user name or password)")
    if status == 403:
        fail(f"{doing}: '{actor}' is not allowed to (only the owner, who has MANAGE, or the admin may)")
    fail(f"{doing}: HTTP {status}: {body.get('message', body)}")

def q(**params):
    return "?" + urllib.parse.urlencode(params)

def resource(kind, name):
    """(resource_type, resource_id, label) of an experiment or registered model named `name`."""
    if kind == "experiment":
        status, body = call("GET", "/api/2.0/mlflow/experiments/get-by-name" + q(experiment_name=name))
        if status == 403:  # MLflow does not tell a user what exists beyond what they may read
            fail(f"'{actor}' may not read an experiment named {name!r}: it is someone else's or does not exist")
        if status == 404:
            fail(f"no experiment named {name!r} (names are case-sensitive; list yours in the MLflow UI)")
        found = check(status, body, f"looking up experiment {name!r}")["experiment"]
        return "experiment", found["experiment_id"], f"experiment {name!r} (id {found['experiment_id']})"
    status, body = call("GET", "/api/2.0/mlflow/registered-models/get" + q(name=name))
    if status == 403:
        fail(f"'{actor}' may not read a model named {name!r}: it is someone else's or does not exist")
    if status == 404:
        fail(f"no registered model named {name!r}")
    check(status, body, f"looking up model {name!r}")
    return "registered_model", name, f"model {name!r}"

def known_user(name):
    status, body = call("GET", "/api/2.0/mlflow/users/get" + q(username=name))
    if status == 404:
        fail(f"no user {name!r}: create it first with scripts/tracking_server.sh add-user {name}")
    if status != 403:  # a non-admin owner may not look users up; the grant below then says
        check(status, body, f"looking up user {name!r}")

if action == "ensure-user":
    (name,) = args
    new_password = os.environ["AMBULANCE_API_NEW_PASSWORD"]
    status, body = call("GET", "/api/2.0/mlflow/users/get" + q(username=name))
    if status == 200:
        status, _ = call("GET", "/api/2.0/mlflow/users/current", user=name, password=new_password)
        if status == 200:
            print(f"tracking-server: user {name} exists already (password unchanged)")
        else:
            print(f"tracking-server: user {name} exists already with another password; not changed "
                  f"(to change it: scripts/tracking_server.sh set-password {name})")
        sys.exit(0)
    if status != 404:
        check(status, body, f"looking up user {name!r}")
    status, body = call("POST", "/api/2.0/mlflow/users/create", {"username": name, "password": new_password})
    check(status, body, f"creating user {name!r}")
    print(f"tracking-server: created user {name}")
elif action == "set-password":
    (name,) = args
    new_password = os.environ["AMBULANCE_API_NEW_PASSWORD"]
    status, body = call("PATCH", "/api/2.0/mlflow/users/update-password", {"username": name, "password": new_password})
    if status == 404:
        fail(f"no user {name!r}: create it with scripts/tracking_server.sh add-user {name}")
    check(status, body, f"changing the password of {name!r}")
    print(f"tracking-server: changed the password of user {name}")
elif action in ("grant", "revoke"):
    user, level, kind, name = args if action == "grant" else (args[0], None, args[1], args[2])
    known_user(user)
    rtype, rid, label = resource(kind, name)
    grant = {"username": user, "resource_type": rtype, "resource_id": rid}
    if action == "revoke":
        status, body = call("POST", "/api/3.0/mlflow/users/permissions/revoke", grant)
        if status == 404:
            print(f"tracking-server: {user} had no grant on {label}; nothing to revoke")
            sys.exit(0)
        check(status, body, f"revoking {user}'s permission on {label}")
        print(f"tracking-server: as {actor}: revoked {user}'s permission on {label}")
        sys.exit(0)
    status, body = call("POST", "/api/3.0/mlflow/users/permissions/grant", {**grant, "permission": level})
    changed = body.get("error_code") == "RESOURCE_ALREADY_EXISTS"
    if changed:  # MLflow keeps one grant per user and resource: replace it
        check(*call("POST", "/api/3.0/mlflow/users/permissions/revoke", grant), f"replacing {user}'s permission on {label}")
        status, body = call("POST", "/api/3.0/mlflow/users/permissions/grant", {**grant, "permission": level})
    if status == 404:
        fail(f"no user {user!r}: create it first with scripts/tracking_server.sh add-user {user}")
    check(status, body, f"granting {user} {level} on {label}")
    print(f"tracking-server: as {actor}: {'changed' if changed else 'granted'} {user}'s permission on {label} to {level}")
else:
    fail(f"unknown API action {action!r}")
PY

api() {  # api <action> <args...>, acting as $1 with the password in $2 (both from the caller's variables)
    local user="$1" password="$2"
    shift 2
    AMBULANCE_API_USER="$user" AMBULANCE_API_PASSWORD="$password" \
        "$VENV_BIN/python" -c "$API_PY" "$URL" "$@"
}

require_running() {
    mlflow_pid >/dev/null || curl -sf -o /dev/null "$URL/health" \
        || die "no MLflow server answers on $URL: start it with scripts/tracking_server.sh start"
}

admin_password() {
    [[ -r "$STATE/admin_password" ]] \
        || die "cannot read $STATE/admin_password (the admin's password): run this as the user who started the server, or set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD to act as yourself"
    cat "$STATE/admin_password"
}

read_password() {  # a password from stdin, hidden when typed; never an argument
    local prompt="$1" password
    if [[ -t 0 ]]; then
        IFS= read -r -s -p "$prompt: " password
        echo >&2
    else
        IFS= read -r password || [[ -n "$password" ]] || die "no password on stdin"
    fi
    [[ ${#password} -ge 12 ]] || die "the password must have at least 12 characters (MLflow's rule)"
    printf '%s' "$password"
}

check_name() {  # MLflow user names: printable, no spaces (also what MLflow's UI accepts)
    [[ "$1" =~ ^[A-Za-z0-9._@+-]+$ ]] \
        || die "user name '$1' is not allowed: use letters, digits and . _ @ + - only"
}

ensure_user() {  # ensure_user <name> <password>
    local name="$1" password="$2"
    check_name "$name"
    [[ ${#password} -ge 12 ]] || die "the password of $name must have at least 12 characters (MLflow's rule)"
    local admin
    admin="$(admin_password)"
    AMBULANCE_API_NEW_PASSWORD="$password" api admin "$admin" ensure-user "$name"
}

acting_user() {  # grant/revoke act as the logged-in user when there is one, else as the admin
    if [[ -n "${MLFLOW_TRACKING_USERNAME:-}" && -n "${MLFLOW_TRACKING_PASSWORD:-}" ]]; then
        ACT_USER="$MLFLOW_TRACKING_USERNAME" ACT_PASSWORD="$MLFLOW_TRACKING_PASSWORD"
    else
        ACT_USER=admin
        ACT_PASSWORD="$(admin_password)"
    fi
}

resource_kind() {
    case "$1" in
        experiment) echo experiment ;;
        model | registered_model | registered-model) echo model ;;
        *) die "unknown kind '$1': use experiment or model" ;;
    esac
}

stop_all() {
    local pid
    if pid="$(mlflow_pid)"; then
        # setsid made MLflow the leader of its own group: stop it with its workers.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        say "stopped MLflow (pid $pid)"
    else
        say "MLflow was not running"
    fi
    rm -f "$STATE/mlflow.pid"
    local bin
    if bin="$(pg_bin)" && [[ -s "$PGDATA/PG_VERSION" ]] && as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
        say "stopped PostgreSQL"
    fi
}

usage() {
    cat >&2 <<EOF
usage: $0 start|stop|status|install
       $0 add-user <user>                 (password on stdin)
       $0 set-password <user>             (password on stdin)
       $0 grant <user> <read|edit|manage> <experiment|model> <name>
       $0 revoke <user> <experiment|model> <name>
EOF
    exit 2
}

case "${1:-}" in
    install) ensure_postgres_installed ;;
    start)
        default_permission >/dev/null  # refuse a bad setting before changing anything
        ensure_postgres_installed
        start_postgres
        start_mlflow
        if [[ -n "${MLFLOW_TRACKING_USERNAME:-}" && "$MLFLOW_TRACKING_USERNAME" != admin ]]; then
            [[ -n "${MLFLOW_TRACKING_PASSWORD:-}" ]] \
                || die "MLFLOW_TRACKING_USERNAME=$MLFLOW_TRACKING_USERNAME is set but MLFLOW_TRACKING_PASSWORD is empty: set both to create that user"
            ensure_user "$MLFLOW_TRACKING_USERNAME" "$MLFLOW_TRACKING_PASSWORD"
        fi
        say "ready: export MLFLOW_TRACKING_URI=$URL MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<password>, then run any app with tracking=server"
        ;;
    stop) stop_all ;;
    status)
        if pid="$(mlflow_pid)"; then
            echo "MLflow: running (pid $pid, user $(ps -o user= -p "$pid")) on $URL"
        else
            echo "MLflow: stopped"
        fi
        if bin="$(pg_bin)" && as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
            echo "PostgreSQL: running on 127.0.0.1:$PG_PORT"
        else
            echo "PostgreSQL: stopped"
        fi
        ;;
    add-user | set-password)
        [[ $# == 2 ]] || usage
        check_name "$2"
        require_running
        password="$(read_password "password for $2")"
        if [[ "$1" == add-user ]]; then
            ensure_user "$2" "$password"
        else
            admin="$(admin_password)"
            AMBULANCE_API_NEW_PASSWORD="$password" api admin "$admin" set-password "$2"
        fi
        ;;
    grant)
        [[ $# == 5 ]] || usage
        check_name "$2"
        case "${3,,}" in
            read | edit | manage) level="${3^^}" ;;
            *) die "unknown permission '$3': use read, edit or manage" ;;
        esac
        kind="$(resource_kind "$4")"
        require_running
        acting_user
        api "$ACT_USER" "$ACT_PASSWORD" grant "$2" "$level" "$kind" "$5"
        ;;
    revoke)
        [[ $# == 4 ]] || usage
        check_name "$2"
        kind="$(resource_kind "$3")"
        require_running
        acting_user
        api "$ACT_USER" "$ACT_PASSWORD" revoke "$2" "$kind" "$4"
        ;;
    *) usage ;;
esac
