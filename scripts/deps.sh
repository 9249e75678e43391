#!/usr/bin/env bash
# Installs what `make test` needs besides Go, all from Debian's packages:
#   slapd, ldap-utils   real OpenLDAP directories and clients (ldapwhoami...)
#   util-linux          prlimit: tests run ldapgate and slapd under descriptor limits
#   rsyslog(-gnutls)    auth_syslog tests: a real rsyslogd over TCP and TLS
#   redis-server        the shared state store's tests (store/, the fleet tests)
#   haproxy             the worked fleet test (integration/fleet_test.go)
#   systemd             systemd-analyze: deploy/'s tests verify the unit
# The tests start every daemon themselves, as the current user, on loopback;
# none is configured or left running. Does nothing when all are present.
# Installing needs root and apt-get.
#
# DEPS_FORCE=1 runs the install even when everything is present (apt-get then
# changes nothing), to exercise this script.
set -euo pipefail

# slapd and others live in /usr/sbin, which is not on every PATH.
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}
gtls() { compgen -G "/usr/lib/*/rsyslog/lmnsd_gtls.so" >/dev/null; }

# Each package and how to tell it is installed.
check() {
	case "$1" in
	slapd) have slapd ;;
	ldap-utils) have ldapwhoami && have ldapsearch ;;
	util-linux) have prlimit ;;
	rsyslog) have rsyslogd ;;
	rsyslog-gnutls) gtls ;;
	redis-server) have redis-server ;;
	haproxy) have haproxy ;;
	systemd) have systemd-analyze ;;
	esac
}
packages=(slapd ldap-utils util-linux rsyslog rsyslog-gnutls redis-server haproxy systemd)

missing=()
for p in "${packages[@]}"; do
	check "$p" || missing+=("$p")
done

if [ "${DEPS_FORCE:-}" = 1 ] && [ ${#missing[@]} -eq 0 ]; then
	missing=("${packages[@]}")
	echo "deps: DEPS_FORCE=1, installing anyway"
elif [ ${#missing[@]} -eq 0 ]; then
	echo "deps: ${packages[*]} are installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}, and installing needs root." >&2
	echo "deps: run 'sudo make deps', or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing ${missing[*]}, and there is no apt-get; install them yourself" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# The tests run their own slapd on random loopback ports. Tell the package
# not to create a system directory, so no slapd is configured or left
# running on port 389 (its start then fails, which the postinst ignores).
if command -v debconf-set-selections >/dev/null 2>&1; then
	echo "deps: debconf: slapd slapd/no_configuration boolean true"
	echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
fi
echo "deps: apt-get update"
apt-get update -q
echo "deps: apt-get install ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}"

for p in "${packages[@]}"; do
	if ! check "$p"; then
		echo "deps: $p is still missing after apt-get install" >&2
		exit 1
	fi
done
echo "deps: installed ${missing[*]}"
