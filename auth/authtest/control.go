package authtest

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"
)

// ControlPath is the prefix of the emulator's control endpoints, served
// only with Options.Control (the emulator program turns it on) and only to
// loopback clients. The real server has nothing there. There is one:
//
//	GET  /_emulator/clock             {"now":"2026-11-26T12:00:00Z","offset":"0s"}
//	POST /_emulator/clock?offset=3h   sets the clock offset (3h, -3h, 90m, 0); answers as GET
//
// The offset may also come as a form field of the POST. A bad one is a 400
// {"error": "..."}.
const ControlPath = "/_emulator/"

// control serves the control endpoints.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		controlAnswer(w, http.StatusForbidden, map[string]string{"error": "control endpoints answer loopback clients only"})
		return
	}
	if strings.TrimSuffix(r.URL.Path, "/") != ControlPath+"clock" {
		controlAnswer(w, http.StatusNotFound, map[string]string{"error": "no such control endpoint; there is " + ControlPath + "clock"})
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		v := r.FormValue("offset")
		d, err := time.ParseDuration(v)
		if err != nil {
			controlAnswer(w, http.StatusBadRequest, map[string]string{"error": "offset must be a duration such as 3h, -3h or 90m"})
			return
		}
		s.SetClockOffset(d)
		w.Header().Set("Date", s.Now().UTC().Format(http.TimeFormat))
	default:
		w.Header().Set("Allow", "GET, POST")
		controlAnswer(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or POST"})
		return
	}
	controlAnswer(w, http.StatusOK, map[string]string{"offset": s.ClockOffset().String(), "now": s.Now().UTC().Format(time.RFC3339)})
}

func controlAnswer(w http.ResponseWriter, status int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(body)
	w.Write(append(b, '\n'))
}
