#!/usr/bin/env bash
# Installs the system packages the integration tests need (Samba AD DC, OpenLDAP slapd, ldap-utils).
# Idempotent: exits quickly when everything is already installed. Runs as root (CI) or through sudo.
set -euo pipefail

PACKAGES=(samba samba-ad-provision samba-vfs-modules samba-dsdb-modules winbind ldap-utils slapd mono-mcs mono-runtime valgrind gcc libc6-dev python3)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-test-deps: all packages present (${PACKAGES[*]})"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# slapd's postinst would otherwise configure and start a system instance; the tests run their own.
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"

# The packages may start system daemons; the tests start their own servers on loopback, so stop
# anything the packages started that would hold the LDAP ports.
for svc in slapd samba-ad-dc smbd nmbd winbind; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        $SUDO systemctl stop "$svc" || true
        $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
done
echo "install-test-deps: done"
