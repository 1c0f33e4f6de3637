#!/usr/bin/env bash
# Server-side fixtures for the connector tests; safe to run again (each step checks first
# and changes nothing that is already in place). Needs root: it edits the servers' config.
#
# - A self-signed certificate for localhost / 127.0.0.1, presented by both servers, so the
#   TLS stages and the SSL_REQUIRED / TLS_ERROR cases can be tested for real.
# - PostgreSQL: TLS on (when it is off), and dedicated test roles with their own pg_hba.conf
#   rules placed before the existing loopback trust rule. Other roles keep their access.
# - MariaDB: TLS on (when it is off; needs a restart), and dedicated test users.
#
# The passwords below are fixtures of these test servers only; the tests use the same ones.
set -euo pipefail

log() { printf '[fixtures] %s\n' "$*"; }

PG="psql -h 127.0.0.1 -U postgres -d test -v ON_ERROR_STOP=1 -qAt"
MY="mariadb -h 127.0.0.1 -uroot"
TLS_DIR=/etc/dafel-test-tls

# --- Certificate -------------------------------------------------------------------------
if [ ! -s "$TLS_DIR/server.crt" ] || [ ! -s "$TLS_DIR/server.key" ]; then
  log "creating a self-signed certificate for localhost in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.crt" 2>/dev/null
fi
chmod 755 "$TLS_DIR"
chmod 644 "$TLS_DIR/server.crt"
chmod 600 "$TLS_DIR/server.key"
# Each server insists on owning its key file.
install -o postgres -g postgres -m 600 "$TLS_DIR/server.key" "$TLS_DIR/postgres.key"
install -o mysql -g mysql -m 600 "$TLS_DIR/server.key" "$TLS_DIR/mysql.key"

# --- PostgreSQL --------------------------------------------------------------------------
pg_reload=false

if [ "$($PG -c 'show ssl')" != "on" ]; then
  config_dir=$(dirname "$($PG -c 'show config_file')")
  log "turning TLS on in PostgreSQL ($config_dir/conf.d/95-dafel-tls.conf)"
  mkdir -p "$config_dir/conf.d"
  cat >"$config_dir/conf.d/95-dafel-tls.conf" <<EOF
# Written by .ci/fixtures.sh: TLS for the connector tests.
ssl = on
ssl_cert_file = '$TLS_DIR/server.crt'
ssl_key_file = '$TLS_DIR/postgres.key'
EOF
  pg_reload=true
fi

$PG <<'SQL'
set password_encryption = 'scram-sha-256';
do $$
begin
  if not exists (select from pg_roles where rolname = 'dafel_t_scram') then
    create role dafel_t_scram login;
  end if;
  if not exists (select from pg_roles where rolname = 'dafel_t_tlsonly') then
    create role dafel_t_tlsonly login;
  end if;
  if not exists (select from pg_roles where rolname = 'dafel_t_noconnect') then
    create role dafel_t_noconnect login;
  end if;
end
$$;
alter role dafel_t_scram password 'dafel-scram-fixture';
alter role dafel_t_tlsonly password 'dafel-tls-fixture';
SQL

# Rules for the test roles only, placed before the first host rule (the loopback trust
# rule) so they match first: a password that is really checked, and TLS-only access.
hba_file=$($PG -c 'show hba_file')
rules='# dafel-test-fixtures begin (written by .ci/fixtures.sh)
host      all  dafel_t_scram    127.0.0.1/32  scram-sha-256
hostssl   all  dafel_t_tlsonly  127.0.0.1/32  scram-sha-256
hostnossl all  dafel_t_tlsonly  127.0.0.1/32  reject
# dafel-test-fixtures end'
wanted=$(mktemp)
awk -v rules="$rules" '
  /^# dafel-test-fixtures begin/ { skipping = 1; next }
  /^# dafel-test-fixtures end/ { skipping = 0; next }
  skipping { next }
  !placed && /^[[:space:]]*host(ssl|nossl|gssenc|nogssenc)?[[:space:]]/ { print rules; placed = 1 }
  { print }
  END { if (!placed) print rules }
' "$hba_file" >"$wanted"
if ! cmp -s "$wanted" "$hba_file"; then
  log "adding the test roles' rules to $hba_file"
  cat "$wanted" >"$hba_file"
  pg_reload=true
fi
rm -f "$wanted"

if $pg_reload; then
  pg_ctlcluster 15 main reload
  for _ in $(seq 1 50); do
    [ "$($PG -c 'show ssl')" = "on" ] && break
    sleep 0.1
  done
fi

# --- MariaDB -----------------------------------------------------------------------------
if [ "$($MY -N -e "select @@have_ssl")" != "YES" ]; then
  log "turning TLS on in MariaDB (restart)"
  mkdir -p /etc/mysql/conf.d
  cat >/etc/mysql/conf.d/dafel-tls.cnf <<EOF
# Written by .ci/fixtures.sh: TLS for the connector tests.
[mysqld]
ssl_cert = $TLS_DIR/server.crt
ssl_key = $TLS_DIR/mysql.key
EOF
  if ! grep -q '^!includedir /etc/mysql/conf.d/' /etc/mysql/my.cnf; then
    printf '\n!includedir /etc/mysql/conf.d/\n' >>/etc/mysql/my.cnf
  fi
  pid=$($MY -N -e "select @@pid_file" | xargs cat)
  mariadb-admin -h 127.0.0.1 -uroot shutdown
  # The server is gone when its process is, not when it stops answering.
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 100); do
    mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  if [ "$($MY -N -e "select @@have_ssl")" != "YES" ]; then
    log "MariaDB did not enable TLS; see /var/log/mysql/error.log"
    exit 1
  fi
fi

$MY <<'SQL'
create user if not exists 'dafel_t_pw'@'%';
alter user 'dafel_t_pw'@'%' identified by 'dafel-mysql-fixture' require none;
create user if not exists 'dafel_t_tlsonly'@'%';
alter user 'dafel_t_tlsonly'@'%' identified by 'dafel-mysql-tls-fixture' require ssl;
create user if not exists 'dafel_t_nogrant'@'%';
alter user 'dafel_t_nogrant'@'%' identified by 'dafel-mysql-nogrant-fixture' require none;
-- Databases the tests create are all named dafel_t_...; the first two users may read them.
grant select, show view on `dafel\_t\_%`.* to 'dafel_t_pw'@'%';
grant select, show view on `dafel\_t\_%`.* to 'dafel_t_tlsonly'@'%';
SQL
