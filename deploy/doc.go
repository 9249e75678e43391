// Package deploy holds no code: its tests check what ships ldapgate, the
// files beside them and at the repository root. systemd/ldapgate.service is
// verified by systemd-analyze (and its hardening scored); `make release`
// is run into a temporary directory and its binaries are checked to be
// static, stripped, built without cgo and with -trimpath, for the right
// architecture, to print the git version, and to match SHA256SUMS;
// container/Containerfile's build command is run as the image would run it;
// LICENSE and NOTICE are checked to cover the vendored gldap and every module
// compiled into the binary.
package deploy
