#!/usr/bin/env bash
# Turns TLS on in the machine's PostgreSQL with a self-made CA, for the TLS tests
# (tests/store/tls.rs) and for trying `sslmode=verify-full` by hand.
#
# Idempotent: the CA and the server certificate (for the name `localhost` only, so
# that `verify-full` to `127.0.0.1` is a wrong host name) are made once in
# $PG_TLS_DIR (default /etc/postgresql-tls) and made again only when missing, not
# signed by the CA there or expiring within a day. The server is then pointed at them
# with ALTER SYSTEM (ssl, ssl_cert_file, ssl_key_file) and reloaded: plain
# connections stay allowed (pg_hba.conf's `host` lines take both), so nothing else
# changes for the other tests.
#
# Prints the CA's path on stdout (messages go to stderr), for
#   export YIWANG_TEST_PG_TLS_CA="$(scripts/pg-tls-setup.sh)"
# Needs: openssl, psql, and the right to write $PG_TLS_DIR and chown it to postgres
# (root, as on the CI machine). The server is reached as
# $PG_TLS_ADMIN (default `host=127.0.0.1 port=5432 user=postgres`).
set -euo pipefail

dir="${PG_TLS_DIR:-/etc/postgresql-tls}"
admin="${PG_TLS_ADMIN:-host=127.0.0.1 port=5432 user=postgres dbname=postgres}"
say() { echo "pg-tls-setup: $*" >&2; }

mkdir -p "$dir"
chmod 0755 "$dir"

fresh() {
  [ -s "$dir/ca.pem" ] && [ -s "$dir/ca.key" ] && [ -s "$dir/server.pem" ] && [ -s "$dir/server.key" ] &&
    openssl x509 -in "$dir/server.pem" -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl x509 -in "$dir/ca.pem" -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1
}

if fresh; then
  say "certificates in $dir are present and valid"
else
  say "making a CA and a server certificate for localhost in $dir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # P-256 keys: what rustls (ring) and PostgreSQL's OpenSSL both take.
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 -subj "/CN=yiwang test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost" >"$tmp/server.ext"
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
    -CAcreateserial -days 825 -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>/dev/null
  install -m 0644 -o postgres -g postgres "$tmp/ca.pem" "$dir/ca.pem"
  install -m 0600 -o root -g root "$tmp/ca.key" "$dir/ca.key"
  install -m 0644 -o postgres -g postgres "$tmp/server.pem" "$dir/server.pem"
  # PostgreSQL refuses a key file that others may read.
  install -m 0600 -o postgres -g postgres "$tmp/server.key" "$dir/server.key"
fi

psql "$admin" -v ON_ERROR_STOP=1 -qAt >/dev/null <<SQL
ALTER SYSTEM SET ssl_cert_file = '$dir/server.pem';
ALTER SYSTEM SET ssl_key_file = '$dir/server.key';
ALTER SYSTEM SET ssl = on;
SELECT pg_reload_conf();
SQL

# The reload is asynchronous, and a certificate the server cannot load only shows in
# its log: check by connecting as the tests will.
check="host=localhost port=5432 user=postgres dbname=postgres sslmode=verify-full sslrootcert=$dir/ca.pem"
for _ in $(seq 1 20); do
  if [ "$(psql "$check" -qAtc 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>/dev/null)" = t ]; then
    say "PostgreSQL answers over TLS with the certificate of $dir (verify-full to localhost)"
    echo "$dir/ca.pem"
    exit 0
  fi
  sleep 0.5
done
say "PostgreSQL does not answer sslmode=verify-full with $dir/ca.pem; its log says why:"
psql "$check" -qAtc 'SELECT 1' >&2 || true
exit 1
