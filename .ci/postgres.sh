#!/usr/bin/env bash
# A PostgreSQL server on loopback for the shared-storage tests, installed (Debian packages) and
# started when none answers. Prints the test database URL on stdout; everything else goes to
# stderr. Never fatal: without a server, the PostgreSQL tests skip and say what is missing.
set -uo pipefail

user=inception
password=inception-ci
db=inception_test
port="${PGPORT:-5432}"
url="postgresql+psycopg://${user}:${password}@127.0.0.1:${port}/${db}"

say() { echo "postgres: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
as_postgres() { if [[ $(id -u) -eq 0 ]]; then su postgres -c "$*"; else sudo -n -u postgres sh -c "$*"; fi; }

if ! pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
    if ! command -v pg_ctlcluster >/dev/null || [[ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]]; then
        say "installing the Debian postgresql packages"
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get update -qq >&2 && as_root apt-get install -y -qq postgresql >&2 \
            || { say "could not install postgresql (not root, or no package mirror)"; exit 0; }
    fi
    version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    if ! pg_lsclusters -h 2>/dev/null | grep -q "^${version} "; then
        as_root pg_createcluster "$version" main -p "$port" >&2 || { say "could not create a cluster"; exit 0; }
    fi
    cluster="$(pg_lsclusters -h | awk -v v="$version" '$1 == v {print $2; exit}')"
    say "starting cluster ${version}/${cluster}"
    as_root pg_ctlcluster "$version" "$cluster" start >&2 || { say "could not start ${version}/${cluster}"; exit 0; }
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
fi
pg_isready -q -h 127.0.0.1 -p "$port" || { say "no server answers on 127.0.0.1:${port}"; exit 0; }

# The test role and database (idempotent); password authentication over TCP, as users have it.
as_postgres "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname='${user}'\" | grep -q 1 \
    || psql -q -p $port -c \"CREATE ROLE ${user} LOGIN PASSWORD '${password}'\"" >&2 || true
as_postgres "psql -q -p $port -tc \"SELECT 1 FROM pg_database WHERE datname='${db}'\" | grep -q 1 \
    || createdb -p $port -O ${user} ${db}" >&2 || true
PGPASSWORD="$password" psql -q -h 127.0.0.1 -p "$port" -U "$user" -d "$db" -c "SELECT 1" >/dev/null 2>&1 \
    || { say "cannot log in as ${user} to ${db}"; exit 0; }
echo "$url"
