package importer

import "fmt"

// main converts [main]: the log level; the rest is reported.
func (c *converter) main(x *sec) {
	if debug, _ := x.boolean("debug", false); debug {
		c.out.Log = &outLog{Level: "debug"}
		x.from("log.level", "debug")
	}
	x.notMapped("log_dir", "ldapgate logs to stderr (journald); set auth_log for the per-bind JSON log")
	x.notMapped("log_stdout", "ldapgate always logs to stderr")
	x.notMapped("log_max_files", "ldapgate does not rotate its logs: use logrotate (README \"Log rotation\")")
	x.notMapped("log_max_size", "ldapgate does not rotate its logs: use logrotate (README \"Log rotation\")")
	x.notMapped("log_file_prefix", "ldapgate logs to stderr")
	x.notMapped("log_auth_events", "set auth_log to the file your SIEM reads: one JSON object per bind decision, with fields of its own (README \"Logs\"), not authevents.log's")
	x.notMapped("log_sso_events", "ldapgate has no SSO")
	x.notMapped("test_connectivity_on_startup", "run `ldapgate check --online` (in ExecStartPre, for the same effect)")
	x.notMapped("fips_mode", "ldapgate has no FIPS mode")
	host, hostSet := x.get("http_proxy_host")
	port, portSet := x.get("http_proxy_port")
	if hostSet || portSet {
		proxy := host
		if portSet {
			proxy = fmt.Sprintf("%s:%s", host, port)
		}
		x.note(notice, "http_proxy_host", "ldapgate reaches Duo through the HTTPS_PROXY environment variable: set HTTPS_PROXY=http://%s in the service's environment (README \"Reaching Duo through an HTTPS proxy\")", proxy)
	}
}
