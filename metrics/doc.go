// Package metrics defines ldapgate's Prometheus metrics on a private registry.
// Labels never carry a secret, DN or username: every label value is either
// an operator-chosen name from the configuration (server section, directory,
// Duo integration) or one of a fixed set of words listed below, so the number
// of series stays bounded whatever clients send.
//
// | Metric                                    | Type      | Labels                        | Meaning |
// |-------------------------------------------|-----------|-------------------------------|---------|
// | ldapgate_build_info                       | gauge     | version, goversion            | Always 1; carries the build's version. |
// | ldapgate_binds_total                      | counter   | server, outcome               | Bind decisions. outcome is the failmode rule for second-factor decisions (second_factor, denied, failmode_safe, failmode_secure, secure_group, degraded, misconfigured, untrusted, unknown, exempt, primary_bind, primary_only) or the primary outcome (invalid_credentials, directory_unavailable, empty_password, anonymous, tls_required, lookup_failed); anything else is counted as other. |
// | ldapgate_failmode_decisions_total         | counter   | server, failmode, decision    | Binds decided by failmode because Duo was unreachable. failmode is safe or secure, decision allow or deny (a secure-group member in a safe section is safe/deny). Any increase of safe/allow means users got in without a second factor. |
// | ldapgate_duo_request_duration_seconds     | histogram | endpoint                      | Duration of each HTTP call to Duo, whatever its result; endpoint is preauth, auth, check or ping (other for anything else). Buckets from 10ms to 60s. |
// | ldapgate_duo_errors_total                 | counter   | class                         | Calls to Duo that ended in an error, by class: unreachable, degraded, misconfigured, untrusted, unknown. Allowed and denied answers are not errors. |
// | ldapgate_duo_state                        | gauge     | integration, state            | 1 for the current health state of a Duo integration (ok, degraded, unreachable, misconfigured), 0 for the others. integration is "api_host/ikey": an integration key identifies, it is not a secret. |
// | ldapgate_directory_up                     | gauge     | directory                     | 1 when the directory (LDAP upstream) answered its latest check, else 0. |
// | ldapgate_directory_url_up                 | gauge     | directory, url                | 1 when that URL of the directory serves (answered its latest check, accepts the lookup account), else 0. url is scheme://host[:port], never a user or password. ldapgate_directory_up stays 1 while any URL serves. |
// | ldapgate_connections                      | gauge     | server                        | TCP client connections open on the server section's listeners now, from accept to close, whether or not they sent anything (refused ones are not counted). |
// | ldapgate_connections_refused_total        | counter   | server, reason                | Connections refused when accepted, with a busy notice: reason max_connections (the section is full) or per_ip (max_connections_per_ip from that address). |
// | ldapgate_connections_dropped_total        | counter   | server, reason                | Connections ldapgate closed itself: idle (idle_timeout), write_timeout (the client did not read its answers), request_timeout (a request began but did not arrive in time), protocol_error (malformed, unknown or oversized request), internal_error (a handler panicked), other. Clients that close, and shutdown, are not counted. |
// | ldapgate_primary_only_until_seconds       | gauge     | server                        | Unix time at which primary-only mode (emergency MFA bypass) ends; 0 when it is off. Alert on > 0. |
// | ldapgate_alerts_delivered_total           | counter   |                               | Operator alerts the webhook accepted (2xx). |
// | ldapgate_alerts_dropped_total             | counter   |                               | Operator alerts dropped because the alert queue was full. |
// | ldapgate_alerts_failed_total              | counter   |                               | Operator alerts given up on after every retry failed. |
// | ldapgate_auth_syslog_sent_total           | counter   |                               | Auth events written to the auth_syslog server. |
// | ldapgate_auth_syslog_dropped_total        | counter   |                               | Auth events not shipped to auth_syslog: the queue was full (server down or slow), or ldapgate stopped first. Alert on any increase. |
// | ldapgate_auth_syslog_connected            | gauge     |                               | 1 while a connection to the auth_syslog server is held, else 0. |
//
// The Go runtime (go_*) and process (process_*) collectors are registered
// too. The alert counters appear once AlertsFunc is called, the auth_syslog
// ones once AuthSyslogFunc is (auth_syslog.address is set).
//
// Suggested alerts: increase(ldapgate_failmode_decisions_total{decision="allow"}[5m]) > 0;
// ldapgate_duo_state{state=~"unreachable|misconfigured"} == 1;
// ldapgate_directory_up == 0; ldapgate_directory_url_up == 0 (a domain
// controller is down while others serve); ldapgate_primary_only_until_seconds > 0;
// a rising rate(ldapgate_connections_refused_total[5m]) or
// rate(ldapgate_connections_dropped_total{reason=~"write_timeout|request_timeout"}[5m])
// (someone is trying to exhaust the proxy);
// a high rate of ldapgate_duo_errors_total or a slow
// histogram_quantile(0.9, rate(ldapgate_duo_request_duration_seconds_bucket{endpoint="preauth"}[5m])).
package metrics
