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
# Few processes (an operator's host and the test suite wait for them): one stat per directory listing
# (qstat), base64 only for file contents and strings with a byte outside printable ASCII (enc_sh
# encodes the rest in the shell), no subshell per string; the document is the same as with one stat,
# readlink and base64 per path (packages/audit/test/collect-script.test.ts compares them).
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
NL='
'

# The base64 tool, chosen once: `base64 -w 0` (GNU coreutils, busybox: one line, no newline at all),
# else `base64 | tr -d '\n'`, else hex through od (B64=hex: the reader takes `hex:` strings).
if command -v base64 >/dev/null 2>&1; then
  if [ "$(printf 'ab?' | base64 -w 0 2>/dev/null)" = YWI/ ]; then B64=w0; else B64=pipe; fi
else
  B64=hex
fi
b64() {
  case $B64 in
    w0) base64 -w 0 ;;
    pipe) base64 | tr -d '\n' ;;
    *) od -An -v -tx1 | tr -d ' \n' | sed 's/^/hex:/' ;;
  esac
}
# b64file FILE: prints FILE's bytes encoded, no newline (a failed open prints nothing, as $(...) did).
b64file() {
  case $B64 in
    w0) base64 -w 0 < "$1" ;;
    pipe) base64 < "$1" | tr -d '\n' ;;
    *) printf '%s' "$(b64 < "$1")" ;;
  esac
}

# Base64 in the shell itself, for strings of printable ASCII only (most paths, names, reasons): no
# process. A character's code is its place in ASCII (32 + its index in PRINT, RFC 20); B0..B63 are
# RFC 4648's alphabet (section 4, table 1). enc_sh fails on any other byte (newline, control, non-ASCII), and the
# whole encoder is dropped at start unless it agrees with the base64 tool on every printable character.
PRINT=' !"#$%&'\''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~'
x=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/
i=0
while [ -n "$x" ]; do
  y=${x#?}
  eval "B$i=\${x%\"\$y\"}"
  x=$y; i=$((i + 1))
done
# enc_sh STRING: sets E to STRING in base64 when every character of it is in PRINT, else fails.
enc_sh() {
  e_s=$1; E=
  while [ -n "$e_s" ]; do
    e_r=${e_s#?}; e_c=${e_s%"$e_r"}; e_s=$e_r; e_t=${PRINT#*"$e_c"}
    [ "${#e_t}" -lt 95 ] || return 1
    e_v=$(((126 - ${#e_t}) << 16)); e_n=1
    if [ -n "$e_s" ]; then
      e_r=${e_s#?}; e_c=${e_s%"$e_r"}; e_s=$e_r; e_t=${PRINT#*"$e_c"}
      [ "${#e_t}" -lt 95 ] || return 1
      e_v=$((e_v | (126 - ${#e_t}) << 8)); e_n=2
      if [ -n "$e_s" ]; then
        e_r=${e_s#?}; e_c=${e_s%"$e_r"}; e_s=$e_r; e_t=${PRINT#*"$e_c"}
        [ "${#e_t}" -lt 95 ] || return 1
        e_v=$((e_v | (126 - ${#e_t}))); e_n=3
      fi
    fi
    case $e_n in
      1) eval "E=\$E\$B$((e_v >> 18))\$B$((e_v >> 12 & 63))==" ;;
      2) eval "E=\$E\$B$((e_v >> 18))\$B$((e_v >> 12 & 63))\$B$((e_v >> 6 & 63))=" ;;
      *) eval "E=\$E\$B$((e_v >> 18))\$B$((e_v >> 12 & 63))\$B$((e_v >> 6 & 63))\$B$((e_v & 63))" ;;
    esac
  done
}
SHENC=0
if [ "$B64" != hex ] && [ "${#PRINT}" = 95 ] && enc_sh "$PRINT" && [ "$E" = "$(printf '%s' "$PRINT" | b64)" ]; then SHENC=1; fi
# enc STRING: sets E to STRING encoded (the shell's encoder when it can, else the tool's).
enc() {
  if [ "$SHENC" = 1 ] && enc_sh "$1"; then return 0; fi
  E=$(printf '%s' "$1" | b64)
}

# ftype STAT%F: sets FT to the document's type for stat's %F text.
ftype() {
  case $1 in
    "regular file"|"regular empty file") FT='file' ;;
    directory) FT='dir' ;;
    "symbolic link") FT='symlink' ;;
    *) FT='other' ;;
  esac
}

# st PATH: sets ST to "type|mode|uid|gid|size" of PATH, not following a link (stat -c on GNU and
# busybox, ls -ldn elsewhere); empty when PATH cannot be stat()ed; fails when stat -c fails and so does ls.
st() {
  if out=$(stat -c '%F|%a|%u|%g|%s' -- "$1" 2>/dev/null); then
    ftype "${out%%|*}"
    ST="$FT|${out#*|}"
  else
    # shellcheck disable=SC2012
    ST=$(ls -ldn -- "$1" 2>/dev/null | awk '{
      c=substr($1,1,1); t=(c=="-")?"file":(c=="d")?"dir":(c=="l")?"symlink":"other";
      m=0; p=substr($1,2,9);
      for(i=1;i<=9;i++){ch=substr(p,i,1); bit=2^(9-i); if(ch!="-"&&ch!="S"&&ch!="T") m+=bit}
      if(substr(p,3,1)~/[sS]/) m+=2048; if(substr(p,6,1)~/[sS]/) m+=1024; if(substr(p,9,1)~/[tT]/) m+=512;
      printf "%s|%o|%s|%s|%s\n", t, m, $3, $4, $5 }')
  fi
}

# Batched stat: one `stat -c` for the paths of a directory listing instead of one per path.
# qstat PATH... (in a $(...) of its own: it execs stat) prints the number of PATHs, then one line per
# PATH: %F|%a|%u|%g|%s|%n|%N (lstat: stat(1) follows no link without -L), %N with QUOTING_STYLE=literal
# `NAME -> TARGET` for a link (GNU coreutils; busybox writes `'NAME' -> 'TARGET'`). Callers leave out
# the paths with a newline; qcheck then keeps the lines in Q only when stat succeeded for all of them
# and printed exactly that many lines (a link target with a newline adds one: the batch is dropped,
# so no line can pass for another path's). take PATH uses Q's first line only when it is PATH's.
STATB=0
stat -c '%F|%a|%u|%g|%s|%n|%N' -- / >/dev/null 2>&1 && STATB=1
# stat by its path: exec searches PATH again at every call, the shell's own lookup is remembered.
STATP=$(command -v stat 2>/dev/null)
case $STATP in /*) ;; *) STATP=stat ;; esac
Q=
qstat() {
  [ "$STATB" = 1 ] && [ $# -gt 0 ] || exit 1
  printf '%s\n' $#
  QUOTING_STYLE=literal
  export QUOTING_STYLE
  exec "$STATP" -c '%F|%a|%u|%g|%s|%n|%N' -- "$@" 2>/dev/null
}
# qcheck: after Q=$(qstat ...) succeeded, drops the count line, or empties Q when the count is wrong.
qcheck() {
  case $Q in *"$NL"*) ;; *) Q=; return 0 ;; esac
  q_n=${Q%%"$NL"*}; Q=${Q#*"$NL"}; q_x=$Q; q_k=1
  while :; do
    case $q_x in *"$NL"*) q_x=${q_x#*"$NL"}; q_k=$((q_k + 1)) ;; *) break ;; esac
  done
  [ "$q_k" = "$q_n" ] || Q=
}
# take PATH: when Q's first line is PATH's, pops it and sets PRE (what st would set ST to) and, for a
# link whose target's length is its lstat size (so nothing was quoted or escaped), LT/LTP (the target
# and PATH: what readlink PATH prints); else PRE is empty (entry stats PATH itself).
take() {
  PRE=
  [ -n "$Q" ] || return 0
  q_l=${Q%%"$NL"*}
  q_f=${q_l%%|*}; q_r=${q_l#*|}
  q_a=${q_r%%|*}; q_r=${q_r#*|}
  q_u=${q_r%%|*}; q_r=${q_r#*|}
  q_g=${q_r%%|*}; q_r=${q_r#*|}
  q_s=${q_r%%|*}; q_r=${q_r#*|}
  case $q_r in "$1|"*) ;; *) return 0 ;; esac
  case $Q in *"$NL"*) Q=${Q#*"$NL"} ;; *) Q= ;; esac
  ftype "$q_f"
  PRE="$FT|$q_a|$q_u|$q_g|$q_s"
  [ "$FT" = symlink ] || return 0
  q_r=${q_r#"$1|"}
  case $q_r in
    "$1 -> "*) q_r=${q_r#"$1 -> "} ;;
    "'$1' -> '"*"'") q_r=${q_r#"'$1' -> '"}; q_r=${q_r%"'"} ;;
    *) return 0 ;;
  esac
  [ "${#q_r}" = "$q_s" ] || return 0
  LT=$q_r; LTP=$1
}
PRE=
LTP=
LT=
# link PATH: sets LT to the target of the link PATH (readlink, unless take read it) and fails when
# readlink does; LTP remembers PATH for the next call.
link() {
  [ "$LTP" = "$1" ] && return 0
  LTP=
  LT=$(readlink "$1" 2>/dev/null) || return 1
  LTP=$1
}

FIRST=1
sep() { if [ "$FIRST" = 1 ]; then FIRST=0; else printf ','; fi; }

# entry PATH [content]: records one path (lstat); with "content", a regular file's bytes too. Takes
# PRE (from take) as PATH's stat when set, and clears it.
entry() {
  p=$1; info=$PRE; PRE=
  case "$SEEN" in *" $p "*) return 0 ;; esac
  [ -e "$R$p" ] || [ -L "$R$p" ] || return 0
  SEEN="$SEEN$p "
  if [ -z "$info" ]; then
    st "$R$p" || return 0
    info=$ST
  fi
  [ -n "$info" ] || return 0
  t=${info%%|*}; r1=${info#*|}; mode=${r1%%|*}; r2=${r1#*|}; uid=${r2%%|*}; r3=${r2#*|}; gid=${r3%%|*}; size=${r3#*|}
  case $uid in ''|*[!0-9]*) ;; *) case "$UIDS" in *" $uid "*) ;; *) UIDS="$UIDS$uid " ;; esac ;; esac
  sep
  enc "$p"
  printf '{"path":"%s","type":"%s","mode":"%s","uid":%s,"gid":%s,"size":%s' "$E" "$t" "$mode" "${uid:-0}" "${gid:-0}" "${size:-0}"
  if [ "$t" = symlink ]; then
    link "$R$p" || LT=
    enc "$LT"
    printf ',"target":"%s"' "$E"
  elif [ "$t" = file ] && [ "${2:-}" = content ]; then
    if [ "${size:-0}" -gt "$MAX" ] 2>/dev/null; then
      enc "too large ($size bytes)"
      printf ',"skipped":"%s"' "$E"
    elif [ -r "$R$p" ]; then
      printf ',"content":"'
      b64file "$R$p"
      printf '"'
    else
      enc 'permission denied'
      printf ',"skipped":"%s"' "$E"
    fi
  fi
  printf '}'
}

# tree DIR NAMEPATTERN DEPTH: records DIR and, recursively (no symlinks followed), files matching the
# case pattern, with their contents; symlinked files are recorded as links plus their target file.
# Two stats for the listing (qstat): its paths, then the target files of its links that match (not
# yet recorded, without a newline), kept in $4 and $5 across the recursion; take pops them in order.
tree() {
  # Positional parameters only: they are the one thing a POSIX sh function keeps per call.
  [ -d "$R$1" ] || { PRE=; return 0; }
  entry "$1"
  [ "$3" -gt 0 ] || return 0
  Q=
  T=
  if [ "$STATB" = 1 ]; then
    Q=$(
      d=$R$1
      set --
      for f in "$d"/* "$d"/.[!.]*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        case $f in *"$NL"*) continue ;; esac
        set -- "$@" "$f"
      done
      qstat "$@"
    ) && qcheck || Q=
    # the link targets the loop below records with their contents, in its order
    set -- "$1" "$2" "$3" "$Q"
    for f in "$R$1"/* "$R$1"/.[!.]*; do
      [ -n "$Q" ] || break
      take "$f"
      case $PRE in symlink\|*) [ "$LTP" = "$f" ] || continue ;; *) continue ;; esac
      name=${f##*/}
      # shellcheck disable=SC2254
      case $name in $2) ;; *) continue ;; esac
      tgt=$LT
      case $tgt in /*) ;; *) tgt="$1/$tgt" ;; esac
      case $tgt in *"$NL"*) continue ;; esac
      case "$SEEN" in *" $tgt "*) continue ;; esac
      [ -f "$R$tgt" ] && T="$T$R$tgt$NL"
    done
    PRE=
    if [ -n "$T" ]; then
      # shellcheck disable=SC2086
      Q=$(set -f; IFS=$NL; qstat $T) && qcheck || Q=
      T=$Q
    fi
    Q=$4
  fi
  set -- "$1" "$2" "$3" "$Q" "$T"
  for f in "$R$1"/* "$R$1"/.[!.]*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    Q=$4; take "$f"; set -- "$1" "$2" "$3" "$Q" "$5"
    rel=${f#"$R"}
    name=${rel##*/}
    if [ -L "$f" ]; then
      entry "$rel"
      link "$f" || continue
      tgt=$LT
      case $tgt in /*) ;; *) tgt="$1/$tgt" ;; esac
      # shellcheck disable=SC2254
      case $name in
        $2)
          if [ -f "$R$tgt" ]; then
            Q=$5; take "$R$tgt"; set -- "$1" "$2" "$3" "$4" "$Q"
            entry "$tgt" content
          fi
          ;;
      esac
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
  # one stat for the paths the loop below records, in its order
  Q=
  if [ "$STATB" = 1 ]; then
    Q=$(
      n=0
      set --
      for f in "$R$d"/sess_* "$R$d"/?/sess_* "$R$d"/?/?/sess_*; do
        [ "$n" -lt "$SAMPLE" ] || break
        [ -e "$f" ] || [ -L "$f" ] || continue
        n=$((n + 1))
        case $f in *"$NL"*) continue ;; esac
        case $f in "$R$d"/?/*) set -- "$@" "${f%/*}" ;; esac
        set -- "$@" "$f"
      done
      qstat "$@"
    ) && qcheck || Q=
  fi
  n=0
  for f in "$R$d"/sess_* "$R$d"/?/sess_* "$R$d"/?/?/sess_*; do
    [ "$n" -lt "$SAMPLE" ] || break
    [ -e "$f" ] || [ -L "$f" ] || continue
    case $f in "$R$d"/?/*) take "${f%/*}"; entry "${f%/*}" ;; esac
    take "$f"
    entry "${f#"$R"}"
    n=$((n + 1))
  done
  Q=
}

# username UID: prints the user name of UID (nothing when it has none). getent passwd (NSS: files,
# LDAP, sssd) on the live host; else the first entry of the passwd file with that uid, as getpwuid(3)
# reads the files database (passwd(5): name:password:UID:...; NIS compat +/- lines name nobody). Below
# AUDIT_ROOT only a passwd file that is no symbolic link (nor its /etc) is read: a link could lead to
# this machine's users. Only fields 1 and 3 leave getent or awk.
# The getent line is cut in the shell as `head -n 1 | cut -d: -f1,3` would (a line without a colon
# whole; with one colon, field 1), so the other fields never leave this function. Sets UNAME.
username() {
  UNAME=
  if [ -z "$R" ] && command -v getent >/dev/null 2>&1; then
    line=$(getent passwd "$1" 2>/dev/null)
    line=${line%%"$NL"*}
    case $line in
      *:*:*) u_r=${line#*:}; u_r=${u_r#*:}; line="${line%%:*}:${u_r%%:*}" ;;
      *:*) line=${line%%:*} ;;
    esac
    [ "${line#*:}" = "$1" ] && UNAME=${line%%:*}
  elif [ -f "$R/etc/passwd" ] && [ ! -L "$R/etc/passwd" ] && [ ! -L "$R/etc" ]; then
    UNAME=$(awk -F: -v u="$1" '$3 ~ /^[0-9]+$/ && $3 + 0 == u + 0 && $1 != "" && $1 !~ /^[+-]/ { printf "%s", $1; exit }' "$R/etc/passwd" 2>/dev/null)
  fi
  return 0
}

printf '{"format":"session-migrate-collect/1","collector_version":2'
enc "$(hostname 2>/dev/null || uname -n)"
printf ',"host":"%s"' "$E"
printf ',"collected_at":"%s"' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
enc "$R"
printf ',"root":"%s"' "$E"

# php binary (only for the live host)
if [ -z "$R" ] && command -v "$PHPBIN" >/dev/null 2>&1; then
  enc "$(command -v "$PHPBIN")"
  printf ',"php":{"binary":"%s"' "$E"
  printf ',"ini_output":"%s"' "$("$PHPBIN" --ini 2>/dev/null | b64)"
  printf ',"values":"%s"' "$("$PHPBIN" -r 'echo json_encode(array("version" => PHP_VERSION, "sys_temp_dir" => sys_get_temp_dir(), "loaded" => php_ini_loaded_file(), "values" => ini_get_all(null, false)), JSON_INVALID_UTF8_SUBSTITUTE | JSON_PARTIAL_OUTPUT_ON_ERROR);' 2>/dev/null | b64)"
  printf '}'
else
  printf ',"php":null'
fi

printf ',"docroots":['
FIRST=1
for d in "$@"; do sep; enc "$d"; printf '"%s"' "$E"; done
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
  set -f; IFS=$NL
  # shellcheck disable=SC2086
  Q=$(qstat $list) && qcheck || Q=
  for f in $list; do IFS=$OLDIFS; take "$f"; entry "${f#"$R"}" content; done
  IFS=$OLDIFS; set +f; Q=
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
  username "$u"
  [ -n "$UNAME" ] || continue
  enc "$UNAME"
  sep; printf '{"uid":%s,"name":"%s"}' "$u" "$E"
done
printf ']}\n'
