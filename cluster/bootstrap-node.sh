#!/usr/bin/env bash
# Bootstrap one Ray node for syncmaster-ray on Debian 12: JDK 17, the Debian JDBC jars at the paths
# SYNCMASTER__SPARK__JARS expects by default, a Python venv with syncmaster-ray, and a check of the node's settings
# file. Idempotent: a second run installs nothing new. `ray up ray-cluster.yaml` runs it on every node (setup_commands);
# it can also be run by hand on machines joined with a plain `ray start`. It also puts the venv's bin on the PATH of
# the user's interactive shells (~/.bashrc), which Ray's SSH commands source: `ray down` runs a bare `ray stop`.
#
#   bash bootstrap-node.sh [PACKAGE]
#
# PACKAGE: what to `pip install` (a wheel, a directory, or a requirement such as `syncmaster-ray==0.1.0`). Default:
# the newest wheel in $SYNCMASTER_RAY_DIST (ray-cluster.yaml uploads `dist/` there; build it with
# `python -m pip wheel --no-deps -w dist .` in the repository).
#
# Environment (all optional):
#   SYNCMASTER_RAY_VENV      venv to create/update            (default ~/syncmaster-ray)
#   SYNCMASTER_RAY_DIST      directory holding the wheel      (default ~/syncmaster-ray-dist)
#   SYNCMASTER_RAY_ENV_FILE  the node's settings file         (default /etc/syncmaster-ray/env)
#   RAY_AUTH_TOKEN_PATH      the node's Ray token file        (default /etc/syncmaster-ray/ray-auth-token)
#   PYTHON                   interpreter for the venv         (default python3, 3.11 on Debian 12)
#
# Secrets never pass through this script or ray-cluster.yaml: the operator installs the settings file on each node,
# readable by the user Ray runs as and nobody else, e.g.
#   sudo install -d -m 0755 /etc/syncmaster-ray
#   sudo install -m 0600 -o "$USER" env /etc/syncmaster-ray/env
# with at least SYNCMASTER__DATABASE__URL and SYNCMASTER__ENCRYPTION__SECRET_KEY (see .env.compose.example), and
# the cluster's Ray token (Ray's token authentication; ray-cluster.yaml starts Ray with RAY_AUTH_MODE=token):
#   sudo install -m 0600 -o "$USER" ray-auth-token /etc/syncmaster-ray/ray-auth-token
set -euo pipefail

VENV="${SYNCMASTER_RAY_VENV:-$HOME/syncmaster-ray}"
DIST="${SYNCMASTER_RAY_DIST:-$HOME/syncmaster-ray-dist}"
ENV_FILE="${SYNCMASTER_RAY_ENV_FILE:-/etc/syncmaster-ray/env}"
TOKEN_FILE="${RAY_AUTH_TOKEN_PATH:-/etc/syncmaster-ray/ray-auth-token}"
PYTHON="${PYTHON:-python3}"
# The jars syncmaster_ray.settings.SparkSettings.jars points at by default.
JARS=(/usr/share/java/postgresql.jar /usr/share/java/mariadb-java-client.jar)
# postgresql-client: psql reads Postgres sources for the COPY pipe (about a tenth of the CPU of Python reads).
APT_PACKAGES=(openjdk-17-jre-headless libpostgresql-jdbc-java libmariadb-java postgresql-client python3-venv)

log() { echo "bootstrap-node: $*"; }
die() { echo "bootstrap-node: $*" >&2; exit 1; }

[ -r /etc/debian_version ] && command -v apt-get >/dev/null || die "only Debian-based nodes are supported (apt-get)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"

# 1. System packages: JDK 17, JDBC drivers, venv support. Only what is missing is installed.
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  # openjdk's postinst fails on minimal images without this directory.
  $SUDO mkdir -p /usr/share/man/man1
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
java_version="$(java -version 2>&1 || true)"
[[ "$java_version" == *'version "17'* ]] || die "java on PATH is not JDK 17: ${java_version%%$'\n'*}"
for jar in "${JARS[@]}"; do
  [ -r "$jar" ] || die "$jar is missing after installing ${APT_PACKAGES[*]}"
done

# 2. The venv and the package. A wheel is reinstalled only when its content changed (sha256 stamp).
[ -x "$VENV/bin/python" ] || { log "creating venv $VENV"; "$PYTHON" -m venv "$VENV"; }
package="${1:-}"
if [ -z "$package" ]; then
  package=$(ls -1t "$DIST"/syncmaster_ray-*.whl 2>/dev/null | head -n 1 || true)
  [ -n "$package" ] || die "no syncmaster_ray-*.whl in $DIST and no PACKAGE argument given"
fi
stamp="$VENV/.syncmaster-ray-installed"
if [ -f "$package" ]; then
  want="$(sha256sum "$package" | cut -d' ' -f1)"
else
  want="$package"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  log "pip: installing $package into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$package"
  # Same version, new build: pip would keep the old files, so force the package itself (not its dependencies).
  [ ! -f "$package" ] || "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    --force-reinstall "$package"
  echo "$want" > "$stamp"
else
  log "syncmaster-ray already installed from $package"
fi
"$VENV/bin/python" -c "import syncmaster_ray, ray, raydp, pyspark" || die "the venv $VENV cannot import the stack"

# 3. The settings file: present, private, and valid (database URL, Fernet key). Values are never printed.
[ -f "$ENV_FILE" ] || die "settings file $ENV_FILE is missing; install it (mode 0600, owned by $(id -un)) first"
[ -r "$ENV_FILE" ] || die "settings file $ENV_FILE is not readable by $(id -un), the user Ray runs as"
mode="$(stat -c '%a' "$ENV_FILE")"
case "$mode" in
  ?00|?40|?10|?50) ;;
  *) log "warning: $ENV_FILE has mode $mode; it holds secrets, use 0600 (or 0640 with a dedicated group)";;
esac
SYNCMASTER_RAY_ENV_FILE="$ENV_FILE" "$VENV/bin/python" - <<'PY' || die "settings in $ENV_FILE are not valid (see above)"
import sys

from syncmaster_ray.settings import get_settings

try:
    settings = get_settings()
    settings.secret_key  # raises ConfigError when SYNCMASTER__ENCRYPTION__SECRET_KEY is unset
except Exception as exc:  # ConfigError names the variable, never its value
    print(f"bootstrap-node: {exc}", file=sys.stderr)
    sys.exit(1)
PY
# 3b. The Ray token file: present, private and not empty (Ray aborts on an unreadable or empty RAY_AUTH_TOKEN_PATH,
# and would refuse a node with another token). Its value is never printed.
[ -f "$TOKEN_FILE" ] || die "Ray token file $TOKEN_FILE is missing; install it (mode 0600, owned by $(id -un)) first"
[ -r "$TOKEN_FILE" ] || die "Ray token file $TOKEN_FILE is not readable by $(id -un), the user Ray runs as"
[ -n "$(tr -d '[:space:]' < "$TOKEN_FILE")" ] || die "Ray token file $TOKEN_FILE is empty"
case "$(stat -c '%a' "$TOKEN_FILE")" in
  ?00|?40|?10|?50) ;;
  *) log "warning: $TOKEN_FILE has mode $(stat -c '%a' "$TOKEN_FILE"); it is a secret, use 0600";;
esac

# 4. /tmp/ray writable: Ray's Java runtime (RayDP's app master, the Spark driver's JVM) unpacks its native library
# into the fixed path /tmp/ray/<ms>, whatever `ray start --temp-dir` says. A /tmp/ray left by another user's Ray
# (e.g. a `ray start` as root) would fail every transfer with "Couldn't make directory: /tmp/ray/...".
if [ -e /tmp/ray ] && ! { [ -w /tmp/ray ] && [ -x /tmp/ray ]; }; then
  die "/tmp/ray (owner $(stat -c %U /tmp/ray)) is not writable by $(id -un): Ray's Java runtime needs it; remove it"
fi

# 5. The venv's `ray` on the PATH of Ray's SSH commands. `ray down` runs a bare `ray stop` on every node through
# `bash --login -c -i 'source ~/.bashrc; ...'`; without this it fails with "ray: command not found", which the
# launcher ignores, and Ray keeps running on nodes it reports as shut down.
path_line="export PATH=\"$VENV/bin:\$PATH\"  # syncmaster-ray: the venv's ray for \`ray down\` (bootstrap-node.sh)"
if ! grep -qxF "$path_line" "$HOME/.bashrc" 2>/dev/null; then
  log "adding $VENV/bin to PATH in ~/.bashrc"
  echo "$path_line" >> "$HOME/.bashrc"
fi
log "node ready: $("$VENV/bin/ray" --version), ${java_version%%$'\n'*}, jars ${JARS[*]}"
