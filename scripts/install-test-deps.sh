#!/usr/bin/env bash
# System packages the integration tests use: openssl (test CA), dnsmasq (real DNS on loopback),
# Cyrus IMAP with CalDAV (the peer calendar server), Chromium (the console tests), pebble (the ACME
# test CA) and PostgreSQL 15 (postgresql-15: initdb, pg_ctl and postgres in
# /usr/lib/postgresql/15/bin, psql through its dependency postgresql-client-15, and the unprivileged
# user `postgres` through postgresql-common; test/support/postgres.ts runs its own server in a
# temporary folder, Debian's cluster is not used), script(1) (bsdutils: a pseudo-terminal for
# the password prompt), socat (a Unix datagram listener standing in for systemd's notification
# socket), Prometheus' Python client (python3-prometheus-client: a second reader of /metrics' text
# format) and systemd-analyze (systemd: checks the sample unit in docs/deploy.md).
# Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
[ -x /usr/lib/cyrus/bin/master ] || need+=(cyrus-imapd)
[ -x /usr/lib/cyrus/bin/httpd ] || need+=(cyrus-caldav)
[ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
command -v faketime >/dev/null || need+=(faketime)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/pebble ] || need+=(pebble)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -x /usr/bin/script ] || need+=(bsdutils)
command -v socat >/dev/null || need+=(socat)
[ -d /usr/lib/python3/dist-packages/prometheus_client ] || need+=(python3-prometheus-client)
[ -x /usr/bin/systemd-analyze ] || need+=(systemd)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "test: missing system packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "test: installing ${need[*]} (apt-get; takes a few minutes once) ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "test: installed ${need[*]}" >&2
