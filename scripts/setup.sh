#!/usr/bin/env bash
# Installs what session-migrate's demo and tests need on a Debian/Ubuntu machine, then runs the command
# given after --then. Idempotent: installs only what is missing.
#   Debian packages: redis-server, redis-tools, openssl, php-cli, php-redis (phpredis), php-igbinary, php-cgi,
#   php-codesniffer (the PSR-12 check of the generated PHP)
#   npm: the locked dependencies (npm ci), when node_modules is missing or older than the lock file
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# redis-cli builds the test clusters; openssl makes the tests' CA and certificates (TLS tests).
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v php >/dev/null 2>&1 || need+=(php-cli)
# Capture the module list first: `php -m | grep -q` can die of SIGPIPE under pipefail and look like "missing".
modules=$(php -m 2>/dev/null || true)
grep -qix 'redis' <<<"$modules" || need+=(php-redis)
grep -qix 'igbinary' <<<"$modules" || need+=(php-igbinary)
command -v php-cgi >/dev/null 2>&1 || need+=(php-cgi)
command -v phpcs >/dev/null 2>&1 || need+=(php-codesniffer)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian package starts a system redis-server on 6379; nothing here uses it (tests and the demo
# start their own on free loopback ports).

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >/dev/null
fi

if [ "${1:-}" = "--then" ]; then
  shift
  exec "$@"
fi
