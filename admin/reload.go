package admin

import (
	"context"
	"errors"
	"time"
)

// OpReload asks the running process to read its configuration file again
// (as SIGHUP does) and to reopen its log files.
const OpReload = "reload"

// ReloadTimeout bounds one reload: reading the file, starting the new
// listeners and reading the secure groups of the sections that changed.
const ReloadTimeout = time.Minute

// ReloadResult is what a reload did.
type ReloadResult struct {
	// Changes says what changed, for people ("sections added: wiki; ...");
	// "no changes" when the file says what runs already.
	Changes string `json:"changes,omitempty"`
	// Problems are the configuration problems, each naming its key path,
	// that kept the running configuration (the reload was refused).
	Problems []string `json:"problems,omitempty"`
}

// Reloader reloads the configuration. A refused reload returns an error
// and, when the file has configuration problems, a result listing them.
type Reloader interface {
	Reload(ctx context.Context) (ReloadResult, error)
}

// WithReloader makes s serve OpReload with r, and returns s.
func (s *Server) WithReloader(r Reloader) *Server {
	s.reloader = r
	return s
}

func (s *Server) reload(ctx context.Context, req Request, p peer) Response {
	if len(req.Servers) > 0 || req.For != "" {
		return fail(errors.New(`"servers" and "for" do not apply to ` + OpReload))
	}
	if s.reloader == nil {
		return fail(errors.New("this process cannot reload its configuration"))
	}
	ctx, cancel := context.WithTimeout(ctx, ReloadTimeout)
	defer cancel()
	s.log.Info("admin request: reload", "peer_uid", p.uid, "peer_pid", p.pid)
	res, err := s.reloader.Reload(ctx)
	if err != nil {
		return Response{Error: err.Error(), Reload: &res}
	}
	return Response{OK: true, Reload: &res}
}
