#!/usr/bin/env bash
# Start the local services the demo and the tests use, when they are not answering already:
# PostgreSQL :5432, RabbitMQ :5672 and MariaDB :3306 (needed by the tests), Redis :6379 (when installed).
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port, name
  for _ in $(seq 1 60); do listening "$1" && return 0; sleep 1; done
  echo "$2 is not listening on 127.0.0.1:$1" >&2; return 1
}

if ! listening 5432; then
  echo "starting PostgreSQL"; pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! listening 5672; then
  echo "starting RabbitMQ"; rabbitmq-server -detached
fi
if ! listening 6379 && command -v redis-server >/dev/null; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! listening 3306 && [ -x /usr/sbin/mariadbd ]; then
  echo "starting MariaDB"; start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
wait_for 5432 PostgreSQL
wait_for 5672 RabbitMQ
wait_for 3306 MariaDB
echo "services up: PostgreSQL :5432, RabbitMQ :5672, MariaDB :3306"
