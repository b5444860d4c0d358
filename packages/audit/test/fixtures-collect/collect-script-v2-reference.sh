#!/bin/sh
# session-migrate audit collect-script: gathers a host's PHP configuration into ONE JSON document on
# stdout, for `session-migrate audit --from-collected FILE`. POSIX sh (dash, busybox ash): no bashisms.
# Reads ini files, conf.d, FPM pool files, Apache php_* config, .user.ini/.htaccess below the document
# roots given as arguments, `php --ini` and the effective ini values (when php exists). It never opens
# a session file: session directories are only stat()ed, and at most SAMPLE file names below them.
# Every string from the host (paths, contents, command output, user names) is base64-encoded, so the
# JSON is always valid whatever bytes it holds. The owners of the recorded paths are named (users: uid
# and name only, never another passwd field): `getent passwd UID` on the live host, else the passwd
# file (AUDIT_ROOT's own /etc/passwd for an image, as `ls -l` inside it would name them).
#   sh collect.sh [DOCROOT...] > host.json
# Environment: AUDIT_ROOT (default empty: the live host; a directory to collect a mounted image),
#              AUDIT_MAX_BYTES (default 8388608: larger files are recorded without contents),
#              AUDIT_SAMPLE (default 20), PHP (default: php on PATH).
set -u
LC_ALL=C
export LC_ALL
R=${AUDIT_ROOT:-}
MAX=${AUDIT_MAX_BYTES:-8388608}
SAMPLE=${AUDIT_SAMPLE:-20}
PHPBIN=${PHP:-php}
SEEN=" "
UIDS=" "
OLDIFS=$IFS

b64() {
  if command -v base64 >/dev/null 2>&1; then base64 | tr -d '\n'
  else od -An -v -tx1 | tr -d ' \n' | sed 's/^/hex:/'
  fi
}
s64() { printf '%s' "$1" | b64; }

# stat fields: type mode uid gid size (stat -c on GNU/busybox, ls -ldn elsewhere)
st() {
  if out=$(stat -c '%F|%a|%u|%g|%s' -- "$1" 2>/dev/null); then
    t=${out%%|*}; rest=${out#*|}
    case $t in
      "regular file"|"regular empty file") t=file ;;
      directory) t=dir ;;
      "symbolic link") t=symlink ;;
      *) t=other ;;
    esac
    printf '%s|%s\n' "$t" "$rest"
  else
    # shellcheck disable=SC2012
    ls -ldn -- "$1" 2>/dev/null | awk '{
      c=substr($1,1,1); t=(c=="-")?"file":(c=="d")?"dir":(c=="l")?"symlink":"other";
      m=0; p=substr($1,2,9);
      for(i=1;i<=9;i++){ch=substr(p,i,1); bit=2^(9-i); if(ch!="-"&&ch!="S"&&ch!="T") m+=bit}
      if(substr(p,3,1)~/[sS]/) m+=2048; if(substr(p,6,1)~/[sS]/) m+=1024; if(substr(p,9,1)~/[tT]/) m+=512;
      printf "%s|%o|%s|%s|%s\n", t, m, $3, $4, $5 }'
  fi
}

FIRST=1
sep() { if [ "$FIRST" = 1 ]; then FIRST=0; else printf ','; fi; }

# entry PATH [content]: records one path (lstat); with "content", a regular file's bytes too.
entry() {
  p=$1
  case "$SEEN" in *" $p "*) return 0 ;; esac
  [ -e "$R$p" ] || [ -L "$R$p" ] || return 0
  SEEN="$SEEN$p "
  info=$(st "$R$p") || return 0
  [ -n "$info" ] || return 0
  t=${info%%|*}; r1=${info#*|}; mode=${r1%%|*}; r2=${r1#*|}; uid=${r2%%|*}; r3=${r2#*|}; gid=${r3%%|*}; size=${r3#*|}
  case $uid in ''|*[!0-9]*) ;; *) case "$UIDS" in *" $uid "*) ;; *) UIDS="$UIDS$uid " ;; esac ;; esac
  sep
  printf '{"path":"%s","type":"%s","mode":"%s","uid":%s,"gid":%s,"size":%s' "$(s64 "$p")" "$t" "$mode" "${uid:-0}" "${gid:-0}" "${size:-0}"
  if [ "$t" = symlink ]; then
    printf ',"target":"%s"' "$(s64 "$(readlink "$R$p" 2>/dev/null)")"
  elif [ "$t" = file ] && [ "${2:-}" = content ]; then
    if [ "${size:-0}" -gt "$MAX" ] 2>/dev/null; then
      printf ',"skipped":"%s"' "$(s64 "too large ($size bytes)")"
    elif [ -r "$R$p" ]; then
      printf ',"content":"%s"' "$(b64 < "$R$p")"
    else
      printf ',"skipped":"%s"' "$(s64 'permission denied')"
    fi
  fi
  printf '}'
}

# tree DIR NAMEPATTERN DEPTH: records DIR and, recursively (no symlinks followed), files matching the
# case pattern, with their contents; symlinked files are recorded as links plus their target file.
tree() {
  # Positional parameters only: they are the one thing a POSIX sh function keeps per call.
  [ -d "$R$1" ] || return 0
  entry "$1"
  [ "$3" -gt 0 ] || return 0
  for f in "$R$1"/* "$R$1"/.[!.]*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    rel=${f#"$R"}
    name=${rel##*/}
    if [ -L "$f" ]; then
      entry "$rel"
      tgt=$(readlink "$f" 2>/dev/null) || continue
      case $tgt in /*) ;; *) tgt="$1/$tgt" ;; esac
      # shellcheck disable=SC2254
      case $name in $2) [ -f "$R$tgt" ] && entry "$tgt" content ;; esac
    elif [ -d "$f" ]; then
      tree "$rel" "$2" $(($3 - 1))
    else
      # shellcheck disable=SC2254
      case $name in $2) entry "$rel" content ;; *) entry "$rel" ;; esac
    fi
  done
}

# sessiondir DIR: stat the directory and up to SAMPLE sess_* names (depth <= 2), never their contents.
sessiondir() {
  d=$1
  case $d in /*) ;; *) return 0 ;; esac
  [ -d "$R$d" ] || { entry "$d"; return 0; }
  entry "$d"
  [ -L "$R$d" ] && return 0
  n=0
  for f in "$R$d"/sess_* "$R$d"/?/sess_* "$R$d"/?/?/sess_*; do
    [ "$n" -lt "$SAMPLE" ] || break
    [ -e "$f" ] || [ -L "$f" ] || continue
    case $f in "$R$d"/?/*) entry "${f%/*}" ;; esac
    entry "${f#"$R"}"
    n=$((n + 1))
  done
}

# username UID: prints the user name of UID (nothing when it has none). getent passwd (NSS: files,
# LDAP, sssd) on the live host; else the first entry of the passwd file with that uid, as getpwuid(3)
# reads the files database (passwd(5): name:password:UID:...; NIS compat +/- lines name nobody). Below
# AUDIT_ROOT only a passwd file that is no symbolic link (nor its /etc) is read: a link could lead to
# this machine's users. Only fields 1 and 3 leave getent or awk.
username() {
  if [ -z "$R" ] && command -v getent >/dev/null 2>&1; then
    line=$(getent passwd "$1" 2>/dev/null | head -n 1 | cut -d: -f1,3)
    [ "${line#*:}" = "$1" ] && printf '%s' "${line%%:*}"
  elif [ -f "$R/etc/passwd" ] && [ ! -L "$R/etc/passwd" ] && [ ! -L "$R/etc" ]; then
    awk -F: -v u="$1" '$3 ~ /^[0-9]+$/ && $3 + 0 == u + 0 && $1 != "" && $1 !~ /^[+-]/ { printf "%s", $1; exit }' "$R/etc/passwd" 2>/dev/null
  fi
}

printf '{"format":"session-migrate-collect/1","collector_version":2'
printf ',"host":"%s"' "$(s64 "$(hostname 2>/dev/null || uname -n)")"
printf ',"collected_at":"%s"' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
printf ',"root":"%s"' "$(s64 "$R")"

# php binary (only for the live host)
if [ -z "$R" ] && command -v "$PHPBIN" >/dev/null 2>&1; then
  printf ',"php":{"binary":"%s"' "$(s64 "$(command -v "$PHPBIN")")"
  printf ',"ini_output":"%s"' "$("$PHPBIN" --ini 2>/dev/null | b64)"
  printf ',"values":"%s"' "$("$PHPBIN" -r 'echo json_encode(array("version" => PHP_VERSION, "sys_temp_dir" => sys_get_temp_dir(), "loaded" => php_ini_loaded_file(), "values" => ini_get_all(null, false)), JSON_INVALID_UTF8_SUBSTITUTE | JSON_PARTIAL_OUTPUT_ON_ERROR);' 2>/dev/null | b64)"
  printf '}'
else
  printf ',"php":null'
fi

printf ',"docroots":['
FIRST=1
for d in "$@"; do sep; printf '"%s"' "$(s64 "$d")"; done
printf '],"files":['
FIRST=1
for d in /etc/php /etc/php.d /etc/php-fpm.d /etc/opt/remi /usr/local/etc/php /usr/local/etc/php-fpm.d /opt/bitnami/php/etc; do
  tree "$d" '*' 4
done
for d in "$R"/etc/php[0-9]*; do [ -d "$d" ] && tree "${d#"$R"}" '*' 3; done
for f in /etc/php.ini /etc/php-fpm.conf /usr/local/etc/php-fpm.conf; do entry "$f" content; done
for d in /usr/local/lib/php/extensions /usr/lib/php; do tree "$d" 'none' 1; done
for d in /etc/apache2 /etc/httpd; do tree "$d" '*.conf' 4; done
# files php --ini names outside the standard places
if [ -z "$R" ] && command -v "$PHPBIN" >/dev/null 2>&1; then
  for f in $("$PHPBIN" --ini 2>/dev/null | sed -n 's/^Loaded Configuration File:[[:space:]]*//p; s/,$//; /^\//p' | sort -u); do
    [ -f "$f" ] && entry "$f" content
  done
fi
# document roots: only .user.ini and .htaccess files (find does not follow symbolic links)
for d in "$@"; do
  [ -d "$R$d" ] || continue
  entry "$d"
  list=$(find "$R$d" \( -name .user.ini -o -name .htaccess \) -type f 2>/dev/null | head -n 500)
  set -f; IFS='
'
  for f in $list; do IFS=$OLDIFS; entry "${f#"$R"}" content; done
  IFS=$OLDIFS; set +f
done
# session directories: the usual ones plus every absolute path a save_path line names (crude, over-inclusive)
for d in /var/lib/php/sessions /var/lib/php/session /tmp /var/tmp $(
  cat "$R"/etc/php/*/*/php.ini "$R"/etc/php/*/*/conf.d/*.ini "$R"/etc/php.ini "$R"/etc/php.d/*.ini \
      "$R"/etc/php-fpm.d/*.conf "$R"/etc/php/*/fpm/pool.d/*.conf "$R"/usr/local/etc/php/php.ini \
      "$R"/usr/local/etc/php/conf.d/*.ini "$R"/usr/local/etc/php-fpm.d/*.conf "$R"/etc/php[0-9]*/php.ini \
      "$R"/etc/php[0-9]*/conf.d/*.ini "$R"/etc/php[0-9]*/php-fpm.d/*.conf 2>/dev/null |
  sed -n 's/^[[:space:]]*[a-z_]*\[\{0,1\}session\.save_path\]\{0,1\}[[:space:]]*=[[:space:]]*//p' |
  tr -d "\"'" | sed 's/.*;//; s/[[:space:]].*//' | grep '^/' | sort -u | head -n 20); do
  sessiondir "$d"
done
# users: the name of every uid recorded above (those only), for `uid 33 (www-data)` in the audit
printf '],"users":['
FIRST=1
for u in $UIDS; do
  name=$(username "$u")
  [ -n "$name" ] || continue
  sep; printf '{"uid":%s,"name":"%s"}' "$u" "$(s64 "$name")"
done
printf ']}\n'
