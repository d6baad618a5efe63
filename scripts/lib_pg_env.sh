# shellcheck shell=bash
# scripts/lib_pg_env.sh (sourced, not run): psql on a database URL without the URL on psql's
# command line, where `ps` shows it to every user of the machine, password included (the project's
# rule: the database password never appears in logs, ps output or error messages).
#
#   pg_psql URL [PSQL ARGUMENTS...]   psql connected to URL (give it no database name argument)
#   pg_prepare_url URL...             parse the URLs now (once; later pg_psql calls reuse that,
#                                     subshells included): call it in the main shell, before loops
#   pg_describe_url URL               "database D on host H port P as user U": never the password
#   pg_url_with_db URL DBNAME         URL with its database replaced by DBNAME, every other setting
#                                     kept (checked through libpq; refused when it cannot be done)
#
# libpq itself parses the URL (PQconninfoParse through python3's ctypes, the library psql loads),
# so every form psql takes is taken the same way: percent-encoding, [IPv6] hosts, Unix socket
# directories (%2Fvar%2Frun%2Fpostgresql or ?host=/path), several host:port pairs, ?sslmode=...
# and the other parameters, key = value strings. Each setting goes to psql as the libpq
# environment variable of the same meaning (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE,
# PGSSLMODE, ...), which only the same user (and root) can read; the few without one (keepalives,
# tcp_user_timeout, ...: none of them secret) go in a key = value string given as psql's -d.
# sslpassword, secret and without a variable, is refused. What the URL leaves out comes from the
# environment, as with `psql URL`. One difference: libpq ranks a service file (PGSERVICE, or
# service= in the URL) above those variables, so with a service its file's settings would win.
# Errors never quote the URL (libpq's own parse errors can quote the password: not shown).

declare -gA _PG_ENV_CACHE=()

# Reads the URL from PM_PG_URL; prints, shell-quoted, an `export NAME=value` line per setting and
# a `_pg_conninfo=...` line for the settings that have no environment variable.
IFS= read -r -d '' _PG_PARSE_PY <<'PY' || true  # (read ends at the end: status 1)
import ctypes, ctypes.util, os, shlex, sys

class Option(ctypes.Structure):  # PQconninfoOption, libpq-fe.h
    _fields_ = [("keyword", ctypes.c_char_p), ("envvar", ctypes.c_char_p), ("compiled", ctypes.c_char_p),
                ("val", ctypes.c_char_p), ("label", ctypes.c_char_p), ("dispchar", ctypes.c_char_p),
                ("dispsize", ctypes.c_int)]

def fail(message):
    sys.stderr.write(f"lib_pg_env: {message}\n")
    sys.exit(2)

try:
    pq = ctypes.CDLL("libpq.so.5")
except OSError:
    name = ctypes.util.find_library("pq")
    if not name:
        fail("cannot load libpq (libpq.so.5, the library psql uses) to read the database URL")
    pq = ctypes.CDLL(name)
pq.PQconninfoParse.restype = ctypes.POINTER(Option)
pq.PQconninfoParse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
pq.PQconninfoFree.argtypes = [ctypes.POINTER(Option)]
pq.PQfreemem.argtypes = [ctypes.c_void_p]

error = ctypes.c_void_p()
options = pq.PQconninfoParse(os.environb[b"PM_PG_URL"], ctypes.byref(error))
if not options:
    if error:
        pq.PQfreemem(error)
    fail("the database URL is not a connection string libpq accepts "
         "(libpq's reason is not shown: it can quote the password)")

def text(raw):
    return raw.decode("utf-8", "surrogateescape")

def quoted(raw):
    return shlex.quote(text(raw))

lines, rest = [], []
i = 0
while options[i].keyword is not None:
    option = options[i]
    i += 1
    if option.val is None:
        continue
    if option.envvar:
        lines.append(f"export {text(option.envvar)}={quoted(option.val)}")
    elif option.dispchar and b"*" in option.dispchar:
        pq.PQconninfoFree(options)
        fail(f"the database URL sets {text(option.keyword)}, a secret that has no libpq environment "
             "variable: psql could only get it on its command line")
    else:
        value = option.val.replace(b"\\", b"\\\\").replace(b"'", b"\\'")
        rest.append(option.keyword + b"='" + value + b"'")
pq.PQconninfoFree(options)
if rest:
    lines.append("_pg_conninfo=" + quoted(b" ".join(rest)))
out = "\n".join(lines) + "\n"
sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
PY

pg_prepare_url() {  # URL...
  local url code
  for url in "$@"; do
    if [ -z "$url" ]; then echo "lib_pg_env: the database URL is empty" >&2; return 2; fi
    [ -n "${_PG_ENV_CACHE[$url]+set}" ] && continue
    # The URL reaches python3 in its environment, never on its command line.
    code=$(PM_PG_URL=$url python3 -c "$_PG_PARSE_PY") || return 2
    _PG_ENV_CACHE[$url]=$code
  done
}

pg_psql() {  # URL [psql arguments...]
  local url=$1
  shift
  pg_prepare_url "$url" || return
  (
    _pg_conninfo=""
    eval "${_PG_ENV_CACHE[$url]}"
    if [ -n "$_pg_conninfo" ]; then exec psql -d "$_pg_conninfo" "$@"; fi
    exec psql "$@"
  )
}

pg_describe_url() {  # URL
  pg_prepare_url "$1" || return
  (
    _pg_conninfo=""
    eval "${_PG_ENV_CACHE[$1]}"
    user=${PGUSER:-$(id -un)}
    echo "database ${PGDATABASE:-$user} on host ${PGHOST:-${PGHOSTADDR:-the default socket}} port ${PGPORT:-5432} as user $user"
  )
}

# Reads the URL from PM_PG_URL and prints it with its path set to argv[1] and any dbname query
# parameter (which libpq ranks above the path) left out. The rest of the URL is kept byte for byte:
# re-encoding would change it (parse_qsl reads '+' as a space, libpq does not).
IFS= read -r -d '' _PG_WITH_DB_PY <<'PY' || true
import os, sys, urllib.parse as u

url, database = os.environ["PM_PG_URL"], sys.argv[1]
scheme, _, rest = url.partition("://")
if scheme not in ("postgresql", "postgres") or not rest:
    sys.stderr.write("lib_pg_env: the database URL is not a postgresql:// URL; give the benchmark one "
                     "(a key = value string cannot be pointed at another database here)\n")
    sys.exit(2)
rest, hash_mark, fragment = rest.partition("#")
rest, question_mark, query = rest.partition("?")
authority = rest.partition("/")[0]
kept = [p for p in query.split("&") if p and u.unquote(p.partition("=")[0]) != "dbname"]
out = f"{scheme}://{authority}/{u.quote(database, safe='')}"
if kept:
    out += "?" + "&".join(kept)
print(out)
PY

pg_url_with_db() {  # URL DBNAME
  local out
  out=$(PM_PG_URL=$1 python3 -c "$_PG_WITH_DB_PY" "$2") || return 2
  # libpq reads both: the new URL must name DBNAME and differ from the old one in nothing else.
  pg_prepare_url "$1" "$out" || return 2
  if [ "$(_pg_database_of "$out")" != "$2" ] ||
    [ "$(_pg_settings_but_database "$1")" != "$(_pg_settings_but_database "$out")" ]; then
    echo "lib_pg_env: cannot point the database URL at database $2 with its other settings unchanged" >&2
    return 2
  fi
  printf '%s\n' "$out"
}

_pg_database_of() {  # URL (prepared)
  (
    PGDATABASE=""
    eval "${_PG_ENV_CACHE[$1]}"
    printf '%s' "$PGDATABASE"
  )
}

_pg_settings_but_database() {  # URL (prepared)
  grep -v '^export PGDATABASE=' <<<"${_PG_ENV_CACHE[$1]}" || true
}
