package duosim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	pathPing       = "/auth/v2/ping"
	pathCheck      = "/auth/v2/check"
	pathPreauth    = "/auth/v2/preauth"
	pathAuth       = "/auth/v2/auth"
	pathAuthStatus = "/auth/v2/auth_status"

	maxBody = 64 << 10

	msgSuccess        = "Success. Logging you in..."
	msgPushDenied     = "Login request denied."
	msgFraud          = "Reported as fraudulent."
	msgBadPasscode    = "Incorrect passcode. Please try again."
	msgEnroll         = "Enroll an authentication device to proceed"
	msgBypass         = "Allowing bypass user"
	msgLockedOut      = "Your account is disabled"
	msgActive         = "Account is active"
	msgNoPushDevice   = "No device capable of push or phone call is activated for this user. Use a passcode."
	msgSMSSent        = "New SMS passcodes sent."
	msgPushed         = "Pushed a login request to your device..."
	msgCalling        = "Calling your phone..."
	msgMissingParams  = "Missing required request parameters"
	msgInvalidParams  = "Invalid request parameters"
	txnRetention      = 10 * time.Minute
	htmlUnavailable   = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>duosim (simulated load balancer)</center>\r\n</body>\r\n</html>\r\n"
	releasedDetail    = "duosim: held request released because the fault changed"
	passcodeOnlyNoSMS = "No device capable of SMS is activated for this user. Use a passcode."
)

// snapshot is the state a request is served with, read under one lock.
type snapshot struct {
	fault     Fault
	release   chan struct{}
	slowDelay time.Duration
	pushDelay time.Duration
}

// outcome is the end of an authentication.
type outcome struct {
	Result    string `json:"result"`
	Status    string `json:"status"`
	StatusMsg string `json:"status_msg"`
	waits     bool   // a push or call: honours PushDelay
	waitMsg   string // auth_status "waiting" message
	waitState string
}

type txn struct {
	created time.Time
	readyAt time.Time
	out     outcome
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	s.handlerWG.Add(1)
	s.active++
	snap := snapshot{fault: s.fault, release: s.release, slowDelay: s.slowDelay, pushDelay: s.pushDelay}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.mu.Unlock()
		s.handlerWG.Done()
	}()

	now := s.now()
	// Read the whole request first ("hang" reads the request, then stalls).
	params, paramErr := readParams(w, r)

	var counter *int
	signed := true
	s.mu.Lock()
	switch r.URL.Path {
	case pathPing:
		counter, signed = &s.calls.Ping, false
	case pathCheck:
		counter = &s.calls.Check
	case pathPreauth:
		counter = &s.calls.Preauth
	case pathAuth:
		counter = &s.calls.Auth
	case pathAuthStatus:
		counter = &s.calls.AuthStatus
	}
	s.mu.Unlock()

	var sigErr error
	if counter != nil && signed {
		sigErr = VerifySignature(r, params, s.ikey, s.skey, now)
	}
	if counter != nil {
		rec := Request{
			Time:        now,
			Method:      r.Method,
			Proto:       r.Proto,
			Path:        r.URL.Path,
			Username:    params.Get("username"),
			Factor:      params.Get("factor"),
			IPAddr:      params.Get("ipaddr"),
			Pushinfo:    params.Get("pushinfo"),
			SignatureOK: signed && sigErr == nil,
			Fault:       snap.fault,
		}
		if rec.Username == "" {
			rec.Username = params.Get("user_id")
		}
		s.mu.Lock()
		*counter++
		if sigErr != nil {
			s.calls.BadSignature++
		}
		s.recordLocked(rec)
		s.mu.Unlock()
		s.log.Debug("duosim: request", "method", r.Method, "path", r.URL.Path, "username", rec.Username,
			"factor", rec.Factor, "signature_ok", rec.SignatureOK, "fault", string(snap.fault))
	}

	// Faults that sit in front of the API, like a load balancer.
	switch snap.fault {
	case FaultHang:
		s.hold(w, r, snap)
		return
	case FaultSlow:
		d := snap.slowDelay
		if d <= 0 {
			d = DefaultSlowDelay
		}
		s.wait(r.Context(), d)
	case FaultServerError:
		writeHTML503(w)
		return
	case FaultRateLimit:
		writeFail(w, &APIError{Code: CodeRateLimited, Message: "Too Many Requests", Detail: "duosim: rate_limit fault"})
		return
	case FaultCheckHang:
		if r.URL.Path == pathCheck {
			s.hold(w, r, snap)
			return
		}
	case FaultPreauthError:
		if r.URL.Path == pathPreauth {
			writeHTML503(w)
			return
		}
	}

	if counter == nil {
		writeFail(w, &APIError{Code: CodeNotFound, Message: "Resource not found"})
		return
	}
	wantMethod := http.MethodGet
	if r.URL.Path == pathPreauth || r.URL.Path == pathAuth {
		wantMethod = http.MethodPost
	}
	if r.Method != wantMethod {
		w.Header().Set("Allow", wantMethod)
		writeFail(w, &APIError{Code: CodeMethodNotAllow, Message: "Method not allowed", Detail: "use " + wantMethod})
		return
	}
	if paramErr != nil {
		writeFail(w, &APIError{Code: CodeInvalidParams, Message: msgInvalidParams, Detail: paramErr.Error()})
		return
	}
	if r.URL.Path == pathPing {
		writeOK(w, map[string]int64{"time": s.now().Unix()})
		return
	}
	if snap.fault == FaultUnauthorized {
		writeFail(w, &APIError{Code: CodeInvalidSig, Message: msgInvalidSignature, Detail: "duosim: unauthorized fault"})
		return
	}
	if sigErr != nil {
		var apiErr *APIError
		if !errors.As(sigErr, &apiErr) {
			apiErr = &APIError{Code: CodeInvalidSig, Message: msgInvalidSignature}
		}
		writeFail(w, apiErr)
		return
	}

	switch r.URL.Path {
	case pathCheck:
		writeOK(w, map[string]int64{"time": s.now().Unix()})
	case pathPreauth:
		s.preauth(w, params)
	case pathAuth:
		switch snap.fault {
		case FaultAuthHang:
			s.hold(w, r, snap)
			return
		case FaultAuthError:
			writeHTML503(w)
			return
		}
		s.auth(w, r, params, snap)
	case pathAuthStatus:
		s.authStatus(w, params)
	}
}

// readParams returns the signed parameters: the query for GET, the form
// body for POST and PUT (read in full, chunked or not).
func readParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return url.Values{}, fmt.Errorf("query: %v", err)
		}
		return v, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return url.Values{}, fmt.Errorf("body: %v", err)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return url.Values{}, fmt.Errorf("body: %v", err)
	}
	return v, nil
}

// hold never answers until the fault changes (503 FAIL 50301), the client
// goes away or the simulator closes (the connection is dropped).
func (s *Sim) hold(w http.ResponseWriter, r *http.Request, snap snapshot) {
	s.mu.Lock()
	s.held++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}()
	select {
	case <-snap.release:
		writeFail(w, &APIError{Code: CodeUnavailable, Message: "Service Unavailable", Detail: releasedDetail})
	case <-r.Context().Done():
		panic(http.ErrAbortHandler)
	case <-s.closing:
		panic(http.ErrAbortHandler)
	}
}

// wait sleeps for d unless the client goes away or the simulator closes, in
// which case the connection is dropped.
func (s *Sim) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		panic(http.ErrAbortHandler)
	case <-s.closing:
		panic(http.ErrAbortHandler)
	}
}

type device struct {
	Device       string   `json:"device"`
	Type         string   `json:"type"`
	Name         string   `json:"name,omitempty"`
	Number       string   `json:"number,omitempty"`
	Capabilities []string `json:"capabilities"`
}

type preauthResponse struct {
	Result          string   `json:"result"`
	StatusMsg       string   `json:"status_msg"`
	EnrollPortalURL string   `json:"enroll_portal_url,omitempty"`
	Devices         []device `json:"devices,omitempty"`
}

// lookup finds the user named by username or user_id; found is false for
// unknown users. A missing parameter is an APIError.
func (s *Sim) lookup(params url.Values) (u User, found bool, err *APIError) {
	name, id := params.Get("username"), params.Get("user_id")
	if name == "" && id == "" {
		return User{}, false, &APIError{Code: CodeMissingParams, Message: msgMissingParams, Detail: "username or user_id"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		u, found = s.byName[strings.ToLower(name)]
	} else if u, found = s.byID[id]; !found {
		u, found = s.byName[strings.ToLower(id)]
	}
	return u, found, nil
}

func (s *Sim) preauth(w http.ResponseWriter, params url.Values) {
	u, found, apiErr := s.lookup(params)
	if apiErr != nil {
		writeFail(w, apiErr)
		return
	}
	behavior := BehaviorNotEnrolled
	if found {
		behavior = u.Behavior
	}
	var resp preauthResponse
	switch behavior {
	case BehaviorNotEnrolled:
		name := params.Get("username")
		if name == "" {
			name = params.Get("user_id")
		}
		resp = preauthResponse{Result: "enroll", StatusMsg: msgEnroll,
			EnrollPortalURL: "https://" + s.apiHost + "/portal?code=" + userID(name)[2:]}
	case BehaviorBypass:
		resp = preauthResponse{Result: "allow", StatusMsg: msgBypass}
	case BehaviorLockedOut:
		resp = preauthResponse{Result: "deny", StatusMsg: msgLockedOut}
	default:
		resp = preauthResponse{Result: "auth", StatusMsg: msgActive, Devices: devicesOf(u)}
	}
	writeOK(w, resp)
}

func devicesOf(u User) []device {
	if u.Behavior == BehaviorPasscodeOnly {
		return []device{{Device: deviceID("DH", u.Name), Type: "token", Name: u.Name + "'s hardware token", Capabilities: []string{}}}
	}
	return []device{{
		Device:       deviceID("DP", u.Name),
		Type:         "phone",
		Name:         u.Name + "'s phone",
		Number:       "XXX-XXX-0100",
		Capabilities: []string{"auto", "push", "sms", "phone", "mobile_otp"},
	}}
}

// deviceID derives a stable Duo-looking identifier from a name.
func deviceID(prefix, name string) string {
	sum := sha256.Sum256([]byte(prefix + ":" + strings.ToLower(name)))
	return prefix + base32.StdEncoding.EncodeToString(sum[:])[:18]
}

// userID is the simulated Duo user_id of a name ("DU" + 18 characters).
func userID(name string) string { return deviceID("DU", name) }

func (s *Sim) auth(w http.ResponseWriter, r *http.Request, params url.Values, snap snapshot) {
	factor := params.Get("factor")
	if factor == "" {
		writeFail(w, &APIError{Code: CodeMissingParams, Message: msgMissingParams, Detail: "factor"})
		return
	}
	if !slices.Contains([]string{"auto", "push", "phone", "passcode", "sms"}, factor) {
		writeFail(w, &APIError{Code: CodeInvalidParams, Message: msgInvalidParams, Detail: "factor"})
		return
	}
	if factor == "passcode" && params.Get("passcode") == "" {
		writeFail(w, &APIError{Code: CodeMissingParams, Message: msgMissingParams, Detail: "passcode"})
		return
	}
	u, found, apiErr := s.lookup(params)
	if apiErr != nil {
		writeFail(w, apiErr)
		return
	}
	if dev := params.Get("device"); found && dev != "" && dev != "auto" && !slices.ContainsFunc(devicesOf(u), func(d device) bool { return d.Device == dev }) {
		writeFail(w, &APIError{Code: CodeInvalidParams, Message: msgInvalidParams, Detail: "device"})
		return
	}
	out := decide(u, found, factor, params.Get("passcode"))

	if async := params.Get("async"); async == "1" || strings.EqualFold(async, "true") {
		txid, err := newTxid()
		if err != nil {
			writeFail(w, &APIError{Code: 50000, Message: "Internal error"})
			return
		}
		now := time.Now()
		t := &txn{created: now, readyAt: now, out: out}
		if out.waits {
			t.readyAt = now.Add(snap.pushDelay)
		}
		s.mu.Lock()
		for id, old := range s.txns {
			if now.Sub(old.created) > txnRetention {
				delete(s.txns, id)
			}
		}
		s.txns[txid] = t
		s.mu.Unlock()
		writeOK(w, map[string]string{"txid": txid})
		return
	}
	if out.waits {
		s.wait(r.Context(), snap.pushDelay)
	}
	writeOK(w, out)
}

// decide is the outcome of an authentication, Duo style.
func decide(u User, found bool, factor, passcode string) outcome {
	behavior := BehaviorNotEnrolled
	if found {
		behavior = u.Behavior
	}
	switch behavior {
	case BehaviorNotEnrolled:
		return outcome{Result: "deny", Status: "deny", StatusMsg: msgEnroll}
	case BehaviorBypass:
		return outcome{Result: "allow", Status: "bypass", StatusMsg: msgBypass}
	case BehaviorLockedOut:
		return outcome{Result: "deny", Status: "locked_out", StatusMsg: msgLockedOut}
	}
	switch factor {
	case "passcode":
		for _, p := range u.Passcodes {
			if subtle.ConstantTimeCompare([]byte(p), []byte(passcode)) == 1 {
				return outcome{Result: "allow", Status: "allow", StatusMsg: msgSuccess}
			}
		}
		return outcome{Result: "deny", Status: "deny", StatusMsg: msgBadPasscode}
	case "sms":
		if behavior == BehaviorPasscodeOnly {
			return outcome{Result: "deny", Status: "deny", StatusMsg: passcodeOnlyNoSMS}
		}
		return outcome{Result: "deny", Status: "sent", StatusMsg: msgSMSSent}
	}
	// auto, push, phone
	if behavior == BehaviorPasscodeOnly {
		return outcome{Result: "deny", Status: "deny", StatusMsg: msgNoPushDevice}
	}
	waitState, waitMsg := "pushed", msgPushed
	if factor == "phone" {
		waitState, waitMsg = "calling", msgCalling
	}
	if behavior == BehaviorFraud {
		return outcome{Result: "deny", Status: "fraud", StatusMsg: msgFraud, waits: true, waitState: waitState, waitMsg: waitMsg}
	}
	if behavior == BehaviorDeny {
		return outcome{Result: "deny", Status: "deny", StatusMsg: msgPushDenied, waits: true, waitState: waitState, waitMsg: waitMsg}
	}
	return outcome{Result: "allow", Status: "allow", StatusMsg: msgSuccess, waits: true, waitState: waitState, waitMsg: waitMsg}
}

func (s *Sim) authStatus(w http.ResponseWriter, params url.Values) {
	txid := params.Get("txid")
	if txid == "" {
		writeFail(w, &APIError{Code: CodeMissingParams, Message: msgMissingParams, Detail: "txid"})
		return
	}
	s.mu.Lock()
	t, ok := s.txns[txid]
	s.mu.Unlock()
	if !ok {
		writeFail(w, &APIError{Code: CodeInvalidParams, Message: msgInvalidParams, Detail: "txid"})
		return
	}
	if time.Now().Before(t.readyAt) {
		writeOK(w, outcome{Result: "waiting", Status: t.out.waitState, StatusMsg: t.out.waitMsg})
		return
	}
	writeOK(w, t.out)
}

func newTxid() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeOK(w http.ResponseWriter, response any) {
	writeJSON(w, http.StatusOK, map[string]any{"stat": "OK", "response": response})
}

func writeFail(w http.ResponseWriter, e *APIError) {
	v := map[string]any{"stat": "FAIL", "code": e.Code, "message": e.Message}
	if e.Detail != "" {
		v["message_detail"] = e.Detail
	}
	writeJSON(w, e.HTTPStatus(), v)
}

func writeHTML503(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, htmlUnavailable)
}
