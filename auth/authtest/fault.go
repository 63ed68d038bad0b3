package authtest

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Fault replaces the token endpoint's answer to one request. Faults queued
// with FailToken are used one per token request, in order.
type Fault struct {
	Status int           // the status to answer (default 500, when no other field says what to do)
	Body   string        // the body to answer
	Header http.Header   // extra headers (Retry-After, Content-Type)
	Delay  time.Duration // wait this long first (the wait ends early if the client gives up)
	// Hang: never answer; the request ends when the client gives up or the
	// server closes.
	Hang bool
	// Reset: close the connection with a TCP reset instead of answering.
	Reset bool
	// ResetMidBody: answer 200 with the first half of the real answer, then
	// reset the connection.
	ResetMidBody bool
	// AfterProcessing: carry out the request (a refresh rotates the token)
	// and then apply the fault to its answer: the server did the work but
	// the client never learns it.
	AfterProcessing bool
	// Pass: after Delay, carry out the request and give its real answer:
	// a slow answer, not a failed one. With AfterProcessing, the request
	// is carried out first and its answer waits Delay.
	Pass bool
}

// FailToken queues faults for the next token endpoint requests.
func (s *Server) FailToken(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

func (s *Server) nextFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

// apply answers r as f says; real is the answer the server would have given
// (nil before processing).
func (f Fault) apply(w http.ResponseWriter, r *http.Request, real []byte) {
	if !f.wait(r) {
		return
	}
	switch {
	case f.Hang:
		<-r.Context().Done()
		return
	case f.Reset:
		reset(w)
		return
	case f.ResetMidBody:
		if real == nil {
			real = []byte(`{"access_token": "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjB9.c2ln", "expires_in": 7200, "token_type": "Bearer"}`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(real)))
		w.WriteHeader(http.StatusOK)
		w.Write(real[:len(real)/2])
		w.(http.Flusher).Flush()
		reset(w)
		return
	}
	for k, v := range f.Header {
		w.Header()[k] = v
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	w.Write([]byte(f.Body))
}

// wait waits out f.Delay; false if the client gave up first.
func (f Fault) wait(r *http.Request) bool {
	if f.Delay <= 0 {
		return true
	}
	select {
	case <-time.After(f.Delay):
		return true
	case <-r.Context().Done():
		return false
	}
}

// reset closes the request's connection with SO_LINGER 0, so the client
// sees a TCP reset.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic("authtest: cannot hijack the connection: " + err.Error())
	}
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}
