#!/bin/sh
# Regenerates src/data/php82-directives.ts from the installed PHP (Debian php8.2-cli + php8.2-cgi,
# php8.2-redis, php8.2-igbinary). Compiled defaults are read from php-cgi -n (the CLI replaces some
# of them: see CLI_OVERRIDES in src/directives.ts); shared extensions are loaded one by one.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
dump="$here/dump-directives.php"
env -i PATH=/usr/bin:/bin REDIRECT_STATUS=200 REQUEST_METHOD=GET SCRIPT_FILENAME="$dump" "${PHP_CGI:-php-cgi}" -n | sed -n '/^@@BEGIN@@$/{n;p}' > "$tmp/core.json"
"${PHP:-php}" -n -d extension=igbinary -d extension=redis "$dump" | sed -n '/^@@BEGIN@@$/{n;p}' > "$tmp/redis.json"
"${PHP:-php}" -n -d zend_extension=opcache "$dump" | sed -n '/^@@BEGIN@@$/{n;p}' > "$tmp/opcache.json"
"${PHP:-php}" -n "$here/render-directives.php" "$tmp/core.json" "$tmp/redis.json" "$tmp/opcache.json" > "$here/../src/data/php82-directives.ts"
echo "wrote src/data/php82-directives.ts"
