package duosim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

type faultState struct {
	Fault     Fault  `json:"fault"`
	SlowDelay string `json:"slow_delay"`
	PushDelay string `json:"push_delay"`
	Held      int    `json:"held"`
}

// ControlHandler is a plain-HTTP control API for demos and subprocess tests.
// Serve it on a loopback address only: it is unauthenticated.
//
//	GET  /fault         {"fault":"hang","slow_delay":"2s","push_delay":"0s","held":1}
//	PUT  /fault         body {"fault":"refuse"} or plain text "refuse"; "" / "none" clears;
//	POST /fault         JSON may also carry "slow_delay" and "push_delay" ("1.5s")
//	GET  /calls         Calls as JSON
//	POST /calls/reset   zeroes Calls and forgets Requests
//	GET  /users         the user list as JSON
//	PUT  /users         replace users; body as in LoadUsers (YAML or JSON)
//	GET  /requests      recent Requests as JSON
//	GET  /ca.pem        CAPEM
//	GET  /info          {"api_host":"127.0.0.1:PORT","integration_key":"DI..."}
//
// Errors are plain text with status 400 (bad input) or 409 (the simulator is
// closed or the port could not be reopened).
func (s *Sim) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fault", func(w http.ResponseWriter, r *http.Request) {
		s.writeFaultState(w)
	})
	setFault := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		text := strings.TrimSpace(string(body))
		var req struct {
			Fault     *string `json:"fault"`
			SlowDelay string  `json:"slow_delay"`
			PushDelay string  `json:"push_delay"`
		}
		if strings.HasPrefix(text, "{") {
			dec := json.NewDecoder(strings.NewReader(text))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
				return
			}
		} else {
			req.Fault = &text
		}
		var slow, push time.Duration
		for _, d := range []struct {
			text string
			into *time.Duration
		}{{req.SlowDelay, &slow}, {req.PushDelay, &push}} {
			if d.text == "" {
				continue
			}
			if *d.into, err = time.ParseDuration(d.text); err != nil || *d.into < 0 {
				http.Error(w, fmt.Sprintf("bad duration %q", d.text), http.StatusBadRequest)
				return
			}
		}
		if req.SlowDelay != "" {
			s.SetSlow(slow)
		}
		if req.PushDelay != "" {
			s.SetPushDelay(push)
		}
		if req.Fault != nil {
			f, err := ParseFault(*req.Fault)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := s.SetFault(f); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
		}
		s.writeFaultState(w)
	}
	mux.HandleFunc("PUT /fault", setFault)
	mux.HandleFunc("POST /fault", setFault)
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Calls())
	})
	mux.HandleFunc("POST /calls/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCalls()
		writeJSON(w, http.StatusOK, s.Calls())
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Users())
	})
	mux.HandleFunc("PUT /users", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		users, err := ParseUsers(body)
		if err != nil {
			http.Error(w, "users: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.SetUsers(users)
		writeJSON(w, http.StatusOK, s.Users())
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Requests())
	})
	mux.HandleFunc("GET /ca.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.CAPEM())
	})
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"api_host": s.APIHost(), "integration_key": s.ikey})
	})
	return mux
}

func (s *Sim) writeFaultState(w http.ResponseWriter) {
	s.mu.Lock()
	st := faultState{Fault: s.fault, SlowDelay: s.slowDelay.String(), PushDelay: s.pushDelay.String(), Held: s.held}
	if s.slowDelay <= 0 {
		st.SlowDelay = DefaultSlowDelay.String()
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}
