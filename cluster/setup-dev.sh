#!/usr/bin/env bash
# Set a development / CI machine up: JDK 17, the Debian JDBC jars, a Python 3.11 venv with syncmaster-ray.
# Idempotent; run from anywhere. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_PACKAGES=(openjdk-17-jre-headless libpostgresql-jdbc-java libmariadb-java postgresql-client openssh-server samba
              docker-compose)  # docker-compose: `config` validates compose.yaml (no engine needed)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # openssh-server and samba are for the tests' own servers on loopback: keep their packages from starting
  # system daemons on :22/:445 (a policy-rc.d that refuses, removed again unless the image had one).
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$own_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

PYTHON="${PYTHON:-python3.11}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# uv installs the same versions as pip, with parallel downloads: minutes of a fresh machine's set-up are pip's.
# pyspark 3.5.7 is an sdist (~317 MB); its wheel is built once and cached.
[ -x .venv/bin/uv ] || { .venv/bin/python -m pip install -q "uv>=0.9,<1" 2>&1 | grep -v "^WARNING: Location" || true; }
.venv/bin/uv pip install -q --python .venv/bin/python -e ".[test]"
# Bytecode, as pip compiles it at install and uv does not: where PYTHONDONTWRITEBYTECODE is set (this machine's image
# sets it), no import writes .pyc, and every Ray worker, job and actor would compile Ray, pandas and pyarrow from
# source again (a CI session took 1.7x as long); our own package too. Up to date, this takes about 3 s.
.venv/bin/python -m compileall -q -j 0 "$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")" syncmaster_ray syncmaster_ray_dev \
  >/dev/null 2>&1 || true
.venv/bin/python -c "import syncmaster_ray, raydp, pyspark, onetl; print('syncmaster-ray ready:', pyspark.__version__)"
