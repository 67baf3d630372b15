package proxy

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/akoutpost/akoutpost/metrics"
)

// ServeHTTP routes a request to the application for its host. The ping
// endpoint answers for any host.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt := p.routes.Load()
	if r.URL.Path == pathPing {
		w.WriteHeader(http.StatusNoContent)
		p.observe(rt, r, metrics.OtherHost, "ping", start)
		return
	}
	host := p.requestHost(r)
	app := rt.lookup(host, p.cfg.StrictHost)
	if len(rt.all) == 0 {
		// Nothing to route to yet: say so at once rather than let the
		// client wait or blame its host name.
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "This outpost serves no application yet: it is waiting for its configuration from authentik, "+
			"or every proxy provider assigned to it was refused (the outpost's log says why).", http.StatusServiceUnavailable)
		p.observe(rt, r, metrics.OtherHost, "app", start)
		return
	}
	if app == nil {
		p.logger().Warn("no application for host", "host", truncate(host, 100))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "\t")
		enc.Encode(map[string]string{
			"Message": "no app for hostname",
			"Host":    host,
			"Detail":  "Check the outpost settings and make sure '" + host + "' is included.",
		})
		p.observe(rt, r, metrics.OtherHost, "app", start)
		return
	}
	// Nothing a client says about who it is survives, whatever happens next.
	stripClientIdentity(r.Header)
	log := p.logger()
	if !log.Enabled(r.Context(), slog.LevelDebug) {
		app.ServeHTTP(w, r)
		app.requestObserver(p.metrics, rt.info.Name, r.Method).Observe(time.Since(start).Seconds())
		return
	}
	// The access log needs the status.
	rec := &statusWriter{ResponseWriter: w}
	app.ServeHTTP(rec, r)
	app.requestObserver(p.metrics, rt.info.Name, r.Method).Observe(time.Since(start).Seconds())
	log.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("provider", app.name), slog.String("method", r.Method),
		slog.String("host", truncate(host, 100)), slog.String("path", truncate(r.URL.Path, 200)),
		slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)))
}

// statusWriter remembers the status for the access log. Unwrap lets
// http.ResponseController reach Flush and Hijack underneath, which
// streaming and websockets through the reverse proxy need.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (p *Provider) observe(rt *routes, r *http.Request, host, typ string, start time.Time) {
	p.metrics.RequestDuration.WithLabelValues(rt.info.Name, methodLabel(r.Method), host, typ).
		Observe(time.Since(start).Seconds())
}

// lookup finds the application for host (lower case, port kept): the one
// whose external host is host, else the forward_domain one with the
// longest cookie domain host falls under, else, unless strict, the only
// one.
func (rt *routes) lookup(host string, strict bool) *application {
	if a := rt.byHost[host]; a != nil {
		return a
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	} else if port == "80" || port == "443" {
		// A Host with its scheme's default port is the same host.
		for _, candidate := range []string{name, "[" + name + "]"} {
			if a := rt.byHost[candidate]; a != nil {
				return a
			}
		}
	}
	for _, a := range rt.domains {
		if underDomain(name, a.domainSuffix()) {
			return a
		}
	}
	if !strict && len(rt.all) == 1 {
		return rt.all[0]
	}
	return nil
}
