// Package duosim is a Duo Auth API v2 simulator for tests and demos. It is
// never meant for production: it authenticates nobody, trusts a throw-away CA
// and holds its users in memory.
//
// The simulator speaks HTTPS on a loopback port with a certificate from an
// in-memory CA (ECDSA P-256) and verifies every signed request exactly as Duo
// does (see [VerifySignature]), so a real Duo client such as
// github.com/duosecurity/duo_api_golang can talk to it unchanged once it
// trusts [Sim.CAPEM]:
//
//	sim, _ := duosim.New(duosim.Options{IntegrationKey: ikey, SecretKey: skey,
//		Users: []duosim.User{{Name: "alice", Behavior: duosim.BehaviorApprove}}})
//	defer sim.Close()
//	pool := x509.NewCertPool()
//	pool.AppendCertsFromPEM(sim.CAPEM())
//	api := duoapi.NewDuoApi(ikey, skey, sim.APIHost(), "ldapgate",
//		duoapi.SetTransport(func(tr *http.Transport) { tr.TLSClientConfig.RootCAs = pool }))
//	auth := authapi.NewAuthApi(*api)
//
// Endpoints: GET /auth/v2/ping (unsigned), GET /auth/v2/check,
// POST /auth/v2/preauth, POST /auth/v2/auth (sync or async=1) and
// GET /auth/v2/auth_status.
//
// Users have a [Behavior]; names are matched case-insensitively (like Duo's
// default username normalization, without its domain stripping). Unknown
// usernames preauth as "enroll", Duo's default new-user policy. Passcodes
// listed for a user are accepted every time they are used (they are not
// one-time codes, so tests can reuse them); any other passcode is denied.
//
// A [Fault] drives the simulator into a failure mode, from the Go API
// ([Sim.SetFault]) or over plain HTTP ([Sim.ControlHandler]), while requests
// are in flight. Every method of [Sim] is safe for concurrent use.
package duosim
