#!/usr/bin/env bash
# Installs what session-migrate's demo and tests need on a Debian/Ubuntu machine, then runs the command
# given after --then. Idempotent: installs only what is missing.
#   Debian packages: redis-server, redis-tools (redis-cli: the test clusters), php-cli, php-redis (phpredis), php-igbinary, php-cgi,
#   php-codesniffer (the PSR-12 check of the generated PHP), phpunit (the PHP side's own tests,
#   php/tests), php-fpm and nginx (the HTTP tests and
#   benchmarks, test/support/http.ts), wrk (bench/http.ts), openssl (the TLS tests' and benchmark's private CA), util-linux (flock, for stable reads)
#   npm: the locked dependencies (npm ci), when node_modules is missing or older than the lock file
# It does not build the npm package: the clone runs the TypeScript sources (packages/cli/bin/session-migrate.js),
# the integration tests build the bundle they start (test/support/cli-build.ts) and test/package.test.ts
# builds the tarball it installs; `npm run pack` builds dist/session-migrate-<version>.tgz.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# redis-cli builds the test clusters (test/support/redis-topologies.ts).
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v php >/dev/null 2>&1 || need+=(php-cli)
# Capture the module list first: `php -m | grep -q` can die of SIGPIPE under pipefail and look like "missing".
modules=$(php -m 2>/dev/null || true)
grep -qix 'redis' <<<"$modules" || need+=(php-redis)
grep -qix 'igbinary' <<<"$modules" || need+=(php-igbinary)
command -v php-cgi >/dev/null 2>&1 || need+=(php-cgi)
command -v phpcs >/dev/null 2>&1 || need+=(php-codesniffer)
command -v phpunit >/dev/null 2>&1 || need+=(phpunit)
# php-fpm and nginx live in /usr/sbin, which a normal user's PATH may lack.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
php_version=$(php -n -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;' 2>/dev/null || true)
have "php-fpm${php_version}" || have php-fpm || need+=(php-fpm)
have nginx || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# flock(1): the stable read of session files confirms an incomplete-looking file under a shared lock.
command -v flock >/dev/null 2>&1 || need+=(util-linux)
# busybox sh and applets, strace: the collect script's equality and process-count tests
# (packages/audit/test/collect-script.test.ts; skipped without them).
command -v busybox >/dev/null 2>&1 || need+=(busybox)
command -v strace >/dev/null 2>&1 || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian packages may start a system redis-server (6379), nginx (80) and php-fpm; nothing here uses
# them (tests, benchmarks and the demo start their own on free loopback ports, from temp dirs).

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >/dev/null
fi

if [ "${1:-}" = "--then" ]; then
  shift
  exec "$@"
fi
