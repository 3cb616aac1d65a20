package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/batonhq/baton"
)

// drainHost answers POST /api/v1/hosts/{id}/drain (drain) and …/undrain:
// it records the operator's request (baton then moves the host's
// instances to the other hosts, or lets it take instances again) and
// answers the host as it stands.
func (s *Server) drainHost(drain bool) http.HandlerFunc {
	action := "host.undrain"
	if drain {
		action = "host.drain"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := s.host(r, id); err != nil {
			s.auditf(r, action, id, "", err)
			s.fail(w, r, err)
			return
		}
		err := s.Coord.DrainHost(r.Context(), id, drain)
		s.auditf(r, action, id, "", err)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h, err := s.host(r, id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	}
}

// host is the host id as the coordinator lists it; ENOTFOUND naming the
// hosts there are when no host has that id.
func (s *Server) host(r *http.Request, id string) (baton.Host, error) {
	hs, err := s.Coord.Hosts(r.Context())
	if err != nil {
		return baton.Host{}, err
	}
	ids := make([]string, 0, len(hs))
	for _, h := range hs {
		if h.ID == id {
			return h, nil
		}
		ids = append(ids, h.ID)
	}
	slices.Sort(ids)
	known := "none"
	if len(ids) > 0 {
		known = strings.Join(ids, ", ")
	}
	return baton.Host{}, baton.Errorf(baton.ENOTFOUND, "no host %q shares this store; the hosts are: %s (`baton hosts` lists them)", id, known)
}
