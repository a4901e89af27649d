#!/usr/bin/env bash
# A local multi-node Ray cluster for development: a head plus N worker raylets on this machine, each with its own
# resources, stopped by PID on Ctrl-C (never `ray stop`, which would kill every Ray process of the user).
#
#   bash cluster/local-cluster.sh --workers 2 --head-cpus 2 --worker-cpus 2 --memory-gib 4
#
# Export SYNCMASTER__* settings first: Ray jobs read them from the environment the nodes were started in.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m syncmaster_ray_dev.local_cluster "$@"
