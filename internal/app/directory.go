package app

import (
	"fmt"
	"strings"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/directory"
)

// directoryProbed runs after every probe of d with the URL states the
// previous probe saw: it sets ldapgate_directory_up and
// ldapgate_directory_url_up, and tells operators (a log line and an alert)
// when a URL went down or came back while another still served, or when
// the directory as a whole became unusable or usable again. It returns the
// URL states to compare the next probe with.
func (a *app) directoryProbed(d *directory.Client, last []directory.URLState, up, changed bool, err error) []directory.URLState {
	urls := d.URLs()
	serving := 0
	for _, u := range urls {
		a.metrics.SetDirectoryURLUp(d.Name(), u.URL, u.Up)
		if u.Up {
			serving++
		}
	}
	if up && !changed {
		// The directory served before and serves now: a URL that changed
		// did so while another served, which nothing else would tell.
		for i, u := range urls {
			if i >= len(last) || last[i].Checked.IsZero() || u.Up == last[i].Up {
				continue // unchanged, or its first check: nothing to announce
			}
			msg := fmt.Sprintf("directory %s: %s serves again; %d of %d URLs serve", d.Name(), u.URL, serving, len(urls))
			from, to := "down", "up"
			if !u.Up {
				msg = fmt.Sprintf("directory %s: %s down (%s); %d of %d URLs serve", d.Name(), u.URL, u.Err, serving, len(urls))
				from, to = "up", "down"
			}
			a.alert(alert.Event{Kind: alert.KindDirectoryURL, Directory: d.Name(), URL: u.URL, From: from, To: to, Msg: msg})
		}
	}
	if changed {
		sections := a.sectionsOn(d)
		if up {
			a.log.Info("directory usable again", "directory", d.Name())
			a.alert(alert.Event{Kind: alert.KindDirectory, Directory: d.Name(), From: "down", To: "up",
				Msg: fmt.Sprintf("directory %s usable again; sections %s", d.Name(), sections)})
		} else {
			a.log.Error("directory not usable", "directory", d.Name(), "problem", d.Problem(), "err", err)
			a.alert(alert.Event{Kind: alert.KindDirectory, Directory: d.Name(), From: "up", To: "down",
				Msg: fmt.Sprintf("directory %s not usable: %s; sections %s", d.Name(), d.Problem(), sections)})
		}
	}
	a.metrics.SetDirectoryUp(d.Name(), up)
	return urls
}

// sectionsOn names the server sections that use d, for people.
func (a *app) sectionsOn(d *directory.Client) string {
	var names []string
	for _, s := range a.state().sections {
		if s.dir.client == d {
			names = append(names, s.cfg.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
