package failmode

import "strings"

// Integration names a Duo integration the way every part of ldapgate does
// (sections that share one, its health state, metrics labels, alerts):
// "api_host/integration_key", the host lowercased as DNS names compare.
// This is the one place the name is built.
func Integration(apiHost, integrationKey string) string {
	return strings.ToLower(apiHost) + "/" + integrationKey
}
