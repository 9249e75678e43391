package metrics

import "net/url"

// SetDirectoryURLUp records whether one URL of the named directory serves
// (ldapgate_directory_url_up). The url label is scheme://host[:port] only:
// a user, password, path or query the URL carries never becomes a label.
func (m *Metrics) SetDirectoryURLUp(directory, rawURL string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.directoryURLUp.WithLabelValues(directory, urlLabel(rawURL)).Set(v)
}

// urlLabel is the url label of a directory URL: scheme://host[:port], or
// "invalid" for what does not parse as a URL with a host.
func urlLabel(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "invalid"
	}
	return u.Scheme + "://" + u.Host
}
