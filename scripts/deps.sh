#!/usr/bin/env bash
# Installs what `make test` needs besides Go: OpenLDAP's slapd (integration
# tests start real directories), ldap-utils (ldapwhoami, ldapsearch) and
# util-linux's prlimit (tests run ldapgate and slapd under descriptor
# limits). Does nothing when all are present. Installing needs root and
# apt-get.
#
# DEPS_FORCE=1 runs the install even when everything is present (apt-get then
# changes nothing), to exercise this script.
set -euo pipefail

# slapd lives in /usr/sbin, which is not on every PATH.
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

# --- haproxy (integration/fleet_test.go) -----------------------------------
# The worked fleet test runs Debian's haproxy in front of two ldapgate
# instances (send-proxy-v2, /readyz?server= health checks). A block of its
# own, before the one below (which exits once its packages are present).
if ! have haproxy || [ "${DEPS_FORCE:-}" = 1 ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "deps: haproxy is missing, and installing it needs root and apt-get: apt-get install haproxy" >&2
		exit 1
	fi
	echo "deps: apt-get install haproxy"
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy
	have haproxy || { echo "deps: haproxy is still missing after apt-get install" >&2; exit 1; }
	echo "deps: installed haproxy"
else
	echo "deps: haproxy is installed"
fi
# --- end haproxy -------------------------------------------------------------

missing=()
have slapd || missing+=(slapd)
{ have ldapwhoami && have ldapsearch; } || missing+=(ldap-utils)
have prlimit || missing+=(util-linux)

if [ "${DEPS_FORCE:-}" = 1 ] && [ ${#missing[@]} -eq 0 ]; then
	missing=(slapd ldap-utils util-linux)
	echo "deps: DEPS_FORCE=1, installing anyway"
elif [ ${#missing[@]} -eq 0 ]; then
	echo "deps: slapd, ldap-utils and prlimit are installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}, and installing needs root." >&2
	echo "deps: run 'sudo make deps', or: sudo apt-get install slapd ldap-utils" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing ${missing[*]}, and there is no apt-get; install OpenLDAP's slapd and client tools yourself" >&2
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

for tool in slapd ldapwhoami ldapsearch prlimit; do
	if ! have "$tool"; then
		echo "deps: $tool is still missing after apt-get install" >&2
		exit 1
	fi
done
echo "deps: installed ${missing[*]}"
