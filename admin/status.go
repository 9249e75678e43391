package admin

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ldapgate/ldapgate/health"
)

// OpProgramStatus asks for what /status says: version, uptime and every
// section's state (Duo, primary-only, directory and each of its URLs),
// answered in Response.Status. Servers, when given, keeps those sections.
const OpProgramStatus = "status"

// StatusFunc returns the program's current status (health.NewStatus). It
// must be cheap and must not block on the network.
type StatusFunc func() health.Status

// WithStatus makes the server answer OpProgramStatus from f, and returns
// it. Without it, that op is refused.
func (s *Server) WithStatus(f StatusFunc) *Server {
	s.statusFn = f
	return s
}

// programStatus answers OpProgramStatus.
func (s *Server) programStatus(req Request) Response {
	if req.For != "" {
		return fail(errors.New(`"for" applies only to ` + OpEnable))
	}
	if s.statusFn == nil {
		return fail(errors.New("status is not available on this socket"))
	}
	st := s.statusFn()
	if len(req.Servers) > 0 {
		var keep []health.Section
		var unknown []string
		for _, name := range slices.Compact(slices.Sorted(slices.Values(req.Servers))) {
			i := slices.IndexFunc(st.Sections, func(sec health.Section) bool { return sec.Name == name })
			if i < 0 {
				unknown = append(unknown, fmt.Sprintf("%q", name))
				continue
			}
			keep = append(keep, st.Sections[i])
		}
		if len(unknown) > 0 {
			return fail(fmt.Errorf("unknown section %s", strings.Join(unknown, ", ")))
		}
		st.Sections = keep
	}
	return Response{OK: true, Status: &st}
}
