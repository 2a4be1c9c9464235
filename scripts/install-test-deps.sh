#!/usr/bin/env bash
# System packages the integration tests use: openssl (test CA), dnsmasq (real DNS on loopback),
# Cyrus IMAP with CalDAV (the peer calendar server), Chromium (the console tests) and pebble (the
# ACME test CA).
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
