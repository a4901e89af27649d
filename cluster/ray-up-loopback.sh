#!/usr/bin/env bash
# End-to-end check of the shipped ray-cluster.yaml with Ray's real cluster launcher on ONE machine: `ray up` with the
# local provider pointed at 127.0.0.1 through an SSH server on loopback, then a real Postgres -> Postgres transfer
# through Celery, a Ray job and Spark on RayDP on that cluster, then `ray down`.
#
#   sudo bash cluster/ray-up-loopback.sh          # as root, from anywhere; re-runnable
#
# Steps (each one timed; the script stops at the first error and says which step failed):
#   1. user: a dedicated Unix user (default smrrayup) with a home, passwordless sudo for apt only
#      (/etc/sudoers.d), an ed25519 key pair authorized for itself, and an sshd accepting its key on 127.0.0.1:22.
#      An sshd already listening on port 22 is used as is; otherwise one is started with its own config (127.0.0.1:22
#      only, key logins of that user only) in a mount namespace with a private /tmp ($STATE/node-tmp), so the "node"
#      has a /tmp of its own as a separate machine would (see "Node /tmp" below), and stopped at the end.
#   2. wheel + settings: `pip wheel --no-deps -w dist .`, a fresh demo database on the local Postgres with a source
#      table, /etc/syncmaster-ray/env (0600, owned by the user) naming it, the broker and a fresh Fernet key, and
#      /etc/syncmaster-ray/ray-auth-token (0600, owned by the user) with a fresh Ray token: the shipped start
#      commands turn Ray's token authentication on with it.
#   3. ray up: a loopback variant of ray-cluster.yaml, made by a small, explicit transformation (transform_config
#      below: head_ip, worker_ips, ssh user/key, ports, --temp-dir; setup and start commands otherwise as shipped),
#      and `ray up -y` run AS THE USER. The launcher SSHes to 127.0.0.1, which runs cluster/bootstrap-node.sh.
#   4. transfer: `syncmaster-ray db upgrade`, two postgres connections and a transfer, a Celery worker on the
#      transfer's queue (as root, from the repository venv) with SYNCMASTER__RAY__ADDRESS = the new dashboard and the
#      token (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH), and
#      `syncmaster-ray run start`; the run must end FINISHED with every row in the target table.
#   5. ray down (as the user; every Ray process of the user must be gone afterwards), then the cleanup.
# Cleanup (also after a failure): the Celery worker, the cluster (ray down), the demo database, the settings and
# token files and the sshd this script started. The user, its key and its node venv (~/syncmaster-ray) stay, for
# faster re-runs.
#
# Node /tmp: Ray's Java runtime (RayDP's app master, the Spark driver's JVM) unpacks its native library into the fixed
# path /tmp/ray/<ms>, whatever --temp-dir says. On this machine /tmp/ray belongs to root (other Ray clusters), so the
# user's JVMs could not start there; on a real node /tmp/ray is the Ray user's own. Every command `ray up`/`ray down`
# runs on the node comes through the sshd, so an sshd in a mount namespace whose /tmp is a private directory gives
# the node its own /tmp like a separate machine, and nothing outside it is touched.
#
# Safety on a shared machine: no `ray stop`/`ray down` ever runs as root. Every Ray command runs as the dedicated
# user, so the `ray stop` inside the shipped start commands can signal only that user's processes.
#
# Environment (all optional):
#   RAY_UP_USER   the Unix user Ray runs as               (default smrrayup)
#   RAY_UP_DB     demo database on the local Postgres     (default smr_ray_up_loopback; dropped and re-created)
#   RAY_UP_ROWS   rows in the source table                (default 10000)
#   RAY_UP_VENV   venv with syncmaster-ray for the launcher, CLI and Celery worker (default <repo>/.venv)
#   RAY_UP_KEEP   1: on failure, leave cluster, worker, database and sshd running for debugging
#   PG_ADMIN_URL  a Postgres URL allowed to CREATE DATABASE (default postgresql://postgres@127.0.0.1:5432/postgres)
#   BROKER_URL    RabbitMQ                                (default amqp://guest:guest@127.0.0.1:5672/)
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RAY_USER="${RAY_UP_USER:-smrrayup}"
DB="${RAY_UP_DB:-smr_ray_up_loopback}"
ROWS="${RAY_UP_ROWS:-10000}"
VENV="${RAY_UP_VENV:-$REPO/.venv}"
KEEP="${RAY_UP_KEEP:-0}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
BROKER_URL="${BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/}"
ENV_FILE=/etc/syncmaster-ray/env
ENV_MARKER="# written by cluster/ray-up-loopback.sh"
TOKEN_FILE=/etc/syncmaster-ray/ray-auth-token   # the path the shipped start commands give RAY_AUTH_TOKEN_PATH
STATE=/var/lib/smr-ray-up-loopback          # sshd config, host key, pid file and logs of this script
SUDOERS="/etc/sudoers.d/${RAY_USER}-apt"
QUEUE=ray_up_loopback                       # queue name: its slug is what the Celery worker consumes
TRANSFER=ray_up_loopback_pg_to_pg
PY="$VENV/bin/python"

# ---------------------------------------------------------------------------------------------------------------------
# Steps, timings, errors, cleanup
CURRENT_STEP="start"
STEP_STARTED=$SECONDS
SCRIPT_STARTED=$SECONDS
TIMINGS=()
STARTED_SSHD=0
CLUSTER_UP=0
CELERY_PID=""
DB_CREATED=0
ENV_WRITTEN=0
TOKEN_WRITTEN=0
FAILED=0

log() { echo "[ray-up-loopback $(date +%H:%M:%S)] $*"; }
die() {
  FAILED=1
  FAILED_STEP="${FAILED_STEP:-$CURRENT_STEP}"
  echo "[ray-up-loopback] ERROR in step '$CURRENT_STEP': $*" >&2
  exit 1
}
step() {
  end_step
  CURRENT_STEP="$1"
  STEP_STARTED=$SECONDS
  echo
  log "==== step: $CURRENT_STEP"
}
end_step() {
  if [ "$CURRENT_STEP" != "start" ] && [ -n "$CURRENT_STEP" ]; then
    TIMINGS+=("$(printf '%-34s %5ss' "$CURRENT_STEP" $((SECONDS - STEP_STARTED)))")
    log "---- $CURRENT_STEP: done in $((SECONDS - STEP_STARTED)) s"
  fi
  CURRENT_STEP=""
}
on_error() {
  local rc=$? line=$1 cmd=$2
  [ "$BASHPID" = "$$" ] || exit "$rc"   # a subshell: the top level reports the failed command
  FAILED=1
  FAILED_STEP="${FAILED_STEP:-$CURRENT_STEP}"
  echo "[ray-up-loopback] FAILED in step '$CURRENT_STEP' (line $line, exit $rc): $cmd" >&2
  exit "$rc"
}
trap 'on_error $LINENO "$BASH_COMMAND"' ERR

as_user() { sudo -u "$RAY_USER" -H "$@"; }
# Ray's launcher keeps the local provider's cluster state in $RAY_TMPDIR/ray (default /tmp/ray); outside the node's
# namespace /tmp/ray belongs to root, so the user's launcher gets a directory of its own.
# The launcher runs from a venv of the user's own (LAUNCHER): the repository venv may sit on an interpreter under
# /root (pyenv), which other users cannot execute.
ray_as_user() { (cd "$REPO" && as_user env RAY_TMPDIR="$USER_HOME/ray-tmp" "$LAUNCHER/bin/ray" "$@"); }

user_ray_pids() { pgrep -u "$RAY_USER" -f 'raylet|gcs_server|dashboard.py|monitor.py|log_monitor.py|ray::' || true; }

cleanup() {
  local rc=$1
  trap - ERR
  [ "$rc" = 0 ] || { FAILED=1; FAILED_STEP="${FAILED_STEP:-$CURRENT_STEP}"; }
  set +e
  if [ "$FAILED$rc" = "00" ]; then
    end_step
  elif [ -n "$CURRENT_STEP" ]; then
    TIMINGS+=("$(printf '%-34s %5ss  FAILED' "$CURRENT_STEP" $((SECONDS - STEP_STARTED)))")
  fi
  if [ "$FAILED$rc" != "00" ] && [ "$KEEP" = "1" ]; then
    log "RAY_UP_KEEP=1: leaving the cluster, worker, database and sshd as they are"
    return
  fi
  CURRENT_STEP="cleanup"
  STEP_STARTED=$SECONDS
  if [ -n "$CELERY_PID" ] && kill -0 "$CELERY_PID" 2>/dev/null; then
    log "stopping the Celery worker (process group $CELERY_PID)"
    kill -TERM -- "-$CELERY_PID" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$CELERY_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$CELERY_PID" 2>/dev/null
  fi
  if [ "$CLUSTER_UP" = 1 ]; then
    log "ray down (after a failure)"
    ray_as_user down -y "$VARIANT" >"$STATE/ray-down-cleanup.log" 2>&1 \
      || log "ray down failed, see $STATE/ray-down-cleanup.log"
  fi
  if [ -n "$(user_ray_pids)" ]; then
    # Only the user's processes: `ray stop` run as a non-root user cannot signal anyone else's.
    log "Ray processes of $RAY_USER are left: ray stop as $RAY_USER"
    as_user "$USER_HOME/syncmaster-ray/bin/ray" stop --force >/dev/null 2>&1
  fi
  if [ "$DB_CREATED" = 1 ]; then
    log "dropping database $DB"
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null
  fi
  if [ "$TOKEN_WRITTEN" = 1 ] && cmp -s "$TOKEN_FILE" "$STATE/ray-auth-token"; then
    log "removing $TOKEN_FILE"
    rm -f "$TOKEN_FILE" "$STATE/ray-auth-token" "$STATE/ray-auth-header"
  fi
  if [ "$ENV_WRITTEN" = 1 ] && head -n 1 "$ENV_FILE" 2>/dev/null | grep -qF "$ENV_MARKER"; then
    log "removing $ENV_FILE"
    rm -f "$ENV_FILE"
    rmdir /etc/syncmaster-ray 2>/dev/null
  fi
  if [ "$STARTED_SSHD" = 1 ] && [ -s "$STATE/sshd.pid" ]; then
    log "stopping the sshd this script started (pid $(cat "$STATE/sshd.pid"))"
    kill -TERM "$(cat "$STATE/sshd.pid")" 2>/dev/null
    rm -f "$STATE/sshd.pid"
  fi
  TIMINGS+=("$(printf '%-34s %5ss' cleanup $((SECONDS - STEP_STARTED)))")
  echo
  log "timings:"
  printf '  %s\n' "${TIMINGS[@]}"
  printf '  %-34s %5ss\n' total $((SECONDS - SCRIPT_STARTED))
  if [ "$FAILED$rc" = "00" ]; then
    log "RESULT: PASS  (run $RUN_STATUS, $COPIED of $ROWS rows)"
  else
    log "RESULT: FAIL  (step '${FAILED_STEP:-$CURRENT_STEP}'; logs in $STATE)"
  fi
}
FAILED_STEP=""
RUN_STATUS="-"
COPIED="-"
VARIANT=""
USER_HOME=""
trap 'cleanup $?' EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
port_taken() { ss -ltnH "sport = :$1" | grep -q .; }
port_or_free() { if port_taken "$1"; then free_port; else echo "$1"; fi; }

[ "$(id -u)" -eq 0 ] || die "run as root (it creates a user, sudoers and the settings file)"
[ -x "$PY" ] || die "no venv at $VENV (RAY_UP_VENV); run cluster/setup-dev.sh first"
mkdir -p "$STATE"
chmod 0700 "$STATE"

# ---------------------------------------------------------------------------------------------------------------------
step "1. user, key, sshd"
if ! command -v sudo >/dev/null; then
  log "installing sudo (the nodes' user needs passwordless sudo for apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo >/dev/null
fi
if ! id "$RAY_USER" >/dev/null 2>&1; then
  log "creating user $RAY_USER"
  useradd --create-home --shell /bin/bash "$RAY_USER"
fi
# '*' instead of useradd's locked '!': no password can ever match, yet sshd without PAM accepts key logins.
[ "$(getent shadow "$RAY_USER" | cut -d: -f2)" = "*" ] || usermod -p '*' "$RAY_USER"
USER_HOME="$(getent passwd "$RAY_USER" | cut -d: -f6)"
[ -f "$USER_HOME/.bashrc" ] || as_user cp /etc/skel/.bashrc "$USER_HOME/.bashrc"  # Ray's SSH commands source it
# bootstrap-node.sh: `sudo -n mkdir -p /usr/share/man/man1`, `sudo -n apt-get update/install` (keep DEBIAN_FRONTEND).
cat > "$SUDOERS.tmp" <<EOF
# cluster/ray-up-loopback.sh: the Ray node user may install packages (cluster/bootstrap-node.sh), nothing else.
Defaults:$RAY_USER env_keep += "DEBIAN_FRONTEND"
$RAY_USER ALL=(root) NOPASSWD: /usr/bin/apt-get, /usr/bin/mkdir -p /usr/share/man/man1
EOF
visudo -cqf "$SUDOERS.tmp" || die "generated sudoers file is invalid"
chmod 0440 "$SUDOERS.tmp" && mv "$SUDOERS.tmp" "$SUDOERS"
as_user sudo -n apt-get --version >/dev/null || die "passwordless sudo for apt-get does not work for $RAY_USER"

KEY="$USER_HOME/.ssh/id_ed25519"
as_user mkdir -p -m 0700 "$USER_HOME/.ssh"
if [ ! -f "$KEY" ]; then
  log "creating key $KEY"
  as_user ssh-keygen -q -t ed25519 -N '' -C "$RAY_USER@ray-up-loopback" -f "$KEY"
fi
grep -qxF "$(cat "$KEY.pub")" "$USER_HOME/.ssh/authorized_keys" 2>/dev/null \
  || as_user sh -c "cat '$KEY.pub' >> '$USER_HOME/.ssh/authorized_keys'"
chmod 0600 "$USER_HOME/.ssh/authorized_keys"

SSH_OPTS=(-i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o ConnectTimeout=5)
if port_taken 22; then
  log "an sshd listens on port 22 already: using it"
  ss -ltnpH 'sport = :22'
else
  log "nothing listens on port 22: starting /usr/sbin/sshd on 127.0.0.1:22 with $STATE/sshd_config"
  [ -f "$STATE/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$STATE/ssh_host_ed25519_key"
  cat > "$STATE/sshd_config" <<EOF
# cluster/ray-up-loopback.sh: loopback only, key logins of $RAY_USER only.
ListenAddress 127.0.0.1:22
HostKey $STATE/ssh_host_ed25519_key
PidFile $STATE/sshd.pid
UsePAM no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $RAY_USER
UseDNS no
PrintMotd no
X11Forwarding no
MaxStartups 100
MaxSessions 100
EOF
  mkdir -p /run/sshd   # privilege separation directory
  /usr/sbin/sshd -t -f "$STATE/sshd_config" || die "sshd rejects $STATE/sshd_config"
  # A fresh private /tmp for the node (see "Node /tmp"), as after a reboot.
  rm -rf "$STATE/node-tmp" && install -d -m 1777 "$STATE/node-tmp"
  unshare --mount --propagation private sh -c 'mount --bind "$1" /tmp && exec /usr/sbin/sshd -f "$2" -E "$3"' \
    sh "$STATE/node-tmp" "$STATE/sshd_config" "$STATE/sshd.log" || die "could not start sshd with a private /tmp"
  STARTED_SSHD=1
  for _ in $(seq 1 50); do port_taken 22 && break; sleep 0.1; done
fi
as_user ssh "${SSH_OPTS[@]}" "$RAY_USER@127.0.0.1" true \
  || die "key login $RAY_USER@127.0.0.1 fails (see $STATE/sshd.log if this script started the sshd)"
log "key login $RAY_USER@127.0.0.1 works"

# ---------------------------------------------------------------------------------------------------------------------
step "2. wheel, database, settings file"
(cd "$REPO" && rm -f dist/syncmaster_ray-*.whl \
  && "$PY" -m pip wheel -q --no-deps --disable-pip-version-check -w dist . >"$STATE/wheel.log" 2>&1) \
  || die "pip wheel failed: $(tail -n 20 "$STATE/wheel.log")"
ls -l "$REPO"/dist/syncmaster_ray-*.whl

DB_URL="$("$PY" -c 'import sys; from sqlalchemy.engine import make_url
print(make_url(sys.argv[1]).set(database=sys.argv[2]).render_as_string(hide_password=False))' "$PG_ADMIN_URL" "$DB")"
DB_CREATED=1
"$PY" - "$PG_ADMIN_URL" "$DB" "$DB_URL" "$ROWS" <<'PY'
import sys

import psycopg

from syncmaster_ray.cli.demo import fill_source, recreate_database

admin_url, name, db_url, rows = sys.argv[1:]
recreate_database(admin_url, name)
with psycopg.connect(db_url, autocommit=True) as conn:
    fill_source(conn, int(rows))  # public.demo_source
    print("source rows:", conn.execute("SELECT count(*) FROM public.demo_source").fetchone()[0])
PY

if [ -e "$ENV_FILE" ] && ! head -n 1 "$ENV_FILE" | grep -qF "$ENV_MARKER"; then
  die "$ENV_FILE exists and was not written by this script: refusing to overwrite it"
fi
install -d -m 0755 /etc/syncmaster-ray
ENV_WRITTEN=1
FERNET_KEY="$("$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
umask_old=$(umask); umask 077
cat > "$ENV_FILE" <<EOF
$ENV_MARKER (demo database $DB; removed at the end)
SYNCMASTER__DATABASE__URL=$DB_URL
SYNCMASTER__BROKER__URL=$BROKER_URL
SYNCMASTER__ENCRYPTION__SECRET_KEY=$FERNET_KEY
EOF
umask "$umask_old"
chown "$RAY_USER:" "$ENV_FILE"
chmod 0600 "$ENV_FILE"
stat -c '%n %a %U' "$ENV_FILE"

# The Ray token: a file only ($STATE keeps the copy that marks it as ours and the header file curl reads), never on
# a command line. A token file this script did not write is not overwritten.
if [ -e "$TOKEN_FILE" ] && ! cmp -s "$TOKEN_FILE" "$STATE/ray-auth-token"; then
  die "$TOKEN_FILE exists and was not written by this script: refusing to overwrite it"
fi
TOKEN_WRITTEN=1
umask_old=$(umask); umask 077
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$STATE/ray-auth-token"
printf 'Authorization: Bearer %s\n' "$(cat "$STATE/ray-auth-token")" > "$STATE/ray-auth-header"
umask "$umask_old"
install -m 0600 -o "$RAY_USER" "$STATE/ray-auth-token" "$TOKEN_FILE"
stat -c '%n %a %U' "$TOKEN_FILE"

# ---------------------------------------------------------------------------------------------------------------------
step "3. ray up (as $RAY_USER)"
GCS_PORT=$(free_port)                 # 6379 is Redis on this machine
DASHBOARD_PORT=$(port_or_free 8265)
METRICS_PORT=$(port_or_free 8080)
CLIENT_PORT=$(port_or_free 10001)     # Ray's default client server port
AGENT_PORT=$(port_or_free 52365)      # Ray's default dashboard agent HTTP port
WORK_DIR="$USER_HOME/ray-up-loopback"
VARIANT="$WORK_DIR/ray-cluster.loopback.yaml"
LAUNCHER="$WORK_DIR/launcher-venv"
as_user mkdir -p "$WORK_DIR" "$USER_HOME/ray-tmp"
RAY_VERSION="$("$PY" -c 'import ray; print(ray.__version__)')"
LAUNCHER_RAY="$(as_user "$LAUNCHER/bin/python" -c 'import ray; print(ray.__version__)' 2>/dev/null || true)"
if [ "$LAUNCHER_RAY" != "$RAY_VERSION" ]; then
  log "creating the launcher venv $LAUNCHER with ray[default]==$RAY_VERSION (the machine running ray up)"
  as_user python3 -m venv "$LAUNCHER"
  as_user "$LAUNCHER/bin/python" -m pip install -q --disable-pip-version-check "ray[default]==$RAY_VERSION"
fi
"$PY" - "$REPO/ray-cluster.yaml" "$VARIANT.tmp" "$RAY_USER" "$KEY" "$GCS_PORT" "$DASHBOARD_PORT" "$METRICS_PORT" \
  "$CLIENT_PORT" "$AGENT_PORT" <<'PY'
"""transform_config: the shipped file, changed only where one machine shared with others requires it."""
import difflib
import sys

import yaml

src, dst, user, key, gcs, dashboard, metrics, client, agent = sys.argv[1:]
shipped = yaml.safe_load(open(src))
config = yaml.safe_load(open(src))
config["provider"]["head_ip"] = "127.0.0.1"
config["provider"]["worker_ips"] = []
config["auth"] = {"ssh_user": user, "ssh_private_key": key}


def replace_once(commands, old, new):
    """Each edit must hit exactly one place: a changed shipped file fails here instead of being half-tested."""
    hits = [i for i, c in enumerate(commands) if old in c]
    if len(hits) != 1 or commands[hits[0]].count(old) != 1:
        sys.exit(f"transform_config: expected {old!r} once in {commands!r}")
    commands[hits[0]] = commands[hits[0]].replace(old, new)


head = config["head_start_ray_commands"]
worker = config["worker_start_ray_commands"]
# Sessions and logs in the user's home, apart from any other Ray on this machine.
replace_once(head, "--port=6379", f"--port={gcs} --temp-dir=$HOME/ray-tmp")
replace_once(head, "--dashboard-port=8265", f"--dashboard-port={dashboard}")
replace_once(head, "--metrics-export-port=8080", f"--metrics-export-port={metrics}")
extra = []
if client != "10001":
    extra.append(f"--ray-client-server-port={client}")
if agent != "52365":
    extra.append(f"--dashboard-agent-listen-port={agent}")
if extra:
    replace_once(head, "--disable-usage-stats", "--disable-usage-stats " + " ".join(extra))
replace_once(worker, "$RAY_HEAD_IP:6379", f"$RAY_HEAD_IP:{gcs}")  # unused with worker_ips [], kept consistent
replace_once(worker, "--metrics-export-port=8080", f"--metrics-export-port={metrics}")

with open(dst, "w") as out:
    out.write("# Generated by cluster/ray-up-loopback.sh from ray-cluster.yaml: loopback variant, do not edit.\n")
    yaml.safe_dump(config, out, sort_keys=False, width=1000)
dump = lambda c: yaml.safe_dump(c, sort_keys=False, width=1000).splitlines()  # noqa: E731
print("\n".join(difflib.unified_diff(dump(shipped), dump(config), "ray-cluster.yaml", "loopback variant", lineterm="")))
PY
chown "$RAY_USER:" "$VARIANT.tmp" && mv "$VARIANT.tmp" "$VARIANT"
log "variant: $VARIANT (GCS $GCS_PORT, dashboard $DASHBOARD_PORT, metrics $METRICS_PORT)"

CLUSTER_UP=1
log "ray up -y $VARIANT (output in $STATE/ray-up.log)"
ray_as_user up -y --no-config-cache "$VARIANT" >"$STATE/ray-up.log" 2>&1 \
  || die "ray up failed; the end of $STATE/ray-up.log:
$(sed 's/\x1b\[[0-9;]*m//g' "$STATE/ray-up.log" | grep -v VVINFO | tail -n 40)"
# What the node printed: bootstrap-node.sh (setup_commands) and `ray start` (head_start_ray_commands).
sed 's/\x1b\[[0-9;]*m//g' "$STATE/ray-up.log" | grep -E '^bootstrap-node:|Ray runtime started|Local node IP' || true
grep -q '^bootstrap-node: node ready' "$STATE/ray-up.log" || die "bootstrap-node.sh did not report a ready node"
DASHBOARD="http://127.0.0.1:$DASHBOARD_PORT"
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null -H @"$STATE/ray-auth-header" "$DASHBOARD/api/jobs/" 2>/dev/null && break
  sleep 1
done
curl -fsS -o /dev/null -H @"$STATE/ray-auth-header" "$DASHBOARD/api/jobs/" \
  || die "the Jobs API at $DASHBOARD does not answer after ray up"
code="$(curl -sS -o /dev/null -w '%{http_code}' "$DASHBOARD/api/jobs/" || true)"
[ "$code" = 401 ] || die "the Jobs API answered $code without the token: token authentication is not on"
[ -n "$(pgrep -u "$RAY_USER" -x raylet)" ] || die "no raylet of $RAY_USER runs after ray up"
log "cluster up: Jobs API $DASHBOARD answers, raylet pid $(pgrep -u "$RAY_USER" -x raylet)"
RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$TOKEN_FILE" "$PY" - "$DASHBOARD" <<'PY'
import json, sys, urllib.request

from syncmaster_ray.ray_client import dashboard_auth_headers

request = urllib.request.Request(f"{sys.argv[1]}/api/v0/nodes?limit=10", headers=dashboard_auth_headers())
with urllib.request.urlopen(request, timeout=10) as response:
    nodes = json.load(response)["data"]["result"]["result"]
for node in nodes:
    cpus = node["resources_total"].get("CPU")
    print(f"  node {node['node_ip']} {node['state']} head={node['is_head_node']} cpus={cpus}")
PY

# ---------------------------------------------------------------------------------------------------------------------
step "4. transfer through Celery and Ray"
export SYNCMASTER_RAY_ENV_FILE="$ENV_FILE"   # the CLI and the worker read the same settings as the nodes
export SYNCMASTER__RAY__ADDRESS="$DASHBOARD"
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$TOKEN_FILE"   # and the cluster's token, as every node has it
SMR="$VENV/bin/syncmaster-ray"
"$SMR" db upgrade
url_part() {  # url_part host|port|database|username|password: a part of the demo database URL
  "$PY" -c 'import sys; from sqlalchemy.engine import make_url
print(getattr(make_url(sys.argv[1]), sys.argv[2]) or "")' "$DB_URL" "$1"
}
DB_PORT="$(url_part port)"
CONN_DATA="$(printf '{"host":"%s","port":%s,"database_name":"%s","additional_params":{}}' \
  "$(url_part host)" "${DB_PORT:-5432}" "$(url_part database)")"
DB_USER="$(url_part username)"
DB_USER="${DB_USER:-postgres}"
DB_PASSWORD="$(url_part password)"
if [ -n "$DB_PASSWORD" ]; then
  export SYNCMASTER_RAY_CONNECTION_PASSWORD="$DB_PASSWORD"   # not on the command line
  AUTH_ARGS=(--user "$DB_USER")
else  # an empty password (trust auth) counts as unset for --password: give the whole auth_data instead
  AUTH_ARGS=(--auth "{\"type\":\"basic\",\"user\":\"$DB_USER\",\"password\":\"\"}")
fi
for name in loopback_source loopback_target; do
  "$SMR" connection create --name "$name" --type postgres --data "$CONN_DATA" "${AUTH_ARGS[@]}"
done
out="$("$SMR" transfer create --name "$TRANSFER" --source loopback_source --target loopback_target \
  --source-params '{"type":"postgres","table_name":"public.demo_source"}' \
  --target-params '{"type":"postgres","table_name":"public.demo_target"}' \
  --resources '{"max_parallel_tasks":1,"cpu_cores_per_task":1,"ram_bytes_per_task":1073741824}' --queue "$QUEUE")"
echo "$out"
SLUG="$(echo "$out" | sed -n 's/.*queue slug \([^ ]*\).*/\1/p')"
[ -n "$SLUG" ] || die "no queue slug in the output of transfer create"

# Messages a failed earlier run may have left on this queue would hand the worker run ids of another database.
(cd "$REPO" && "$VENV/bin/celery" -A syncmaster_ray.worker purge -f -Q "$SLUG" >/dev/null)
CELERY_LOG="$STATE/celery.log"
: > "$CELERY_LOG"
setsid "$VENV/bin/celery" -A syncmaster_ray.worker worker -Q "$SLUG" --concurrency=1 --loglevel=INFO \
  --without-gossip --without-mingle --without-heartbeat --hostname="ray-up-loopback-$$@%h" >"$CELERY_LOG" 2>&1 &
CELERY_PID=$!
for _ in $(seq 1 120); do
  grep -q " ready\." "$CELERY_LOG" && break
  kill -0 "$CELERY_PID" 2>/dev/null || die "the Celery worker exited; see $CELERY_LOG"
  sleep 0.5
done
grep -q " ready\." "$CELERY_LOG" || die "the Celery worker is not ready after 60 s; see $CELERY_LOG"
log "Celery worker (pid $CELERY_PID) consumes $SLUG, submits to $DASHBOARD"

RUN_STATUS=FAILED
if "$SMR" run start "$TRANSFER" --timeout 1200; then RUN_STATUS=FINISHED; fi
RUN_ID="$(psql -qtA "$DB_URL" -c "SELECT max(id) FROM run")"
if [ "$RUN_STATUS" != FINISHED ]; then
  "$SMR" run logs "$RUN_ID" | tail -n 60
  die "run $RUN_ID did not finish (Celery log: $CELERY_LOG)"
fi
COPIED="$(psql -qtA "$DB_URL" -c "SELECT count(*) FROM public.demo_target")"
log "run $RUN_ID: $RUN_STATUS, target rows $COPIED of $ROWS"
[ "$COPIED" = "$ROWS" ] || die "target has $COPIED rows, expected $ROWS"
RAY_JOB="$(psql -qtA "$DB_URL" -c "SELECT submission_id FROM syncmaster_ray_run WHERE run_id = $RUN_ID" || true)"
[ -z "$RAY_JOB" ] || log "Ray job: $RAY_JOB"

# ---------------------------------------------------------------------------------------------------------------------
step "5. ray down (as $RAY_USER)"
kill -TERM -- "-$CELERY_PID"
for _ in $(seq 1 40); do kill -0 "$CELERY_PID" 2>/dev/null || break; sleep 0.5; done
kill -0 "$CELERY_PID" 2>/dev/null && kill -KILL -- "-$CELERY_PID"
CELERY_PID=""
log "ray down -y $VARIANT (output in $STATE/ray-down.log)"
ray_as_user down -y "$VARIANT" >"$STATE/ray-down.log" 2>&1 || die "ray down failed; see $STATE/ray-down.log"
CLUSTER_UP=0
# `ray down` ignores a failing `ray stop` on the node ("Ignoring the exception"): the processes are what counts.
if grep -q "ray: command not found" "$STATE/ray-down.log"; then
  log "ray down could not run ray stop on the node: ray is not on the PATH of its SSH commands"
fi
for _ in $(seq 1 30); do [ -z "$(user_ray_pids)" ] && break; sleep 1; done
if [ -n "$(user_ray_pids)" ]; then
  ps -o pid,user,cmd -p "$(user_ray_pids | paste -sd,)" | cut -c1-160
  die "Ray processes of $RAY_USER still run after ray down"
fi
log "no Ray process of $RAY_USER is left"
