package outpost_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeCore is a small stand-in for authentik's API and websocket, enough
// for the core package's own tests: the shared test core lives in
// outpost/outposttest and covers far more.
type fakeCore struct {
	t      *testing.T
	prefix string // sub-path the core is mounted under, e.g. "/sub"

	mu        sync.Mutex
	outposts  map[string]*fakeOutpost // by token
	certs     map[string]*fakeCert
	requests  []fakeRequest
	hellos    []fakeHello
	conns     map[*websocket.Conn]bool
	closes    []websocket.StatusCode // close statuses outposts sent
	fail      map[string]int         // path suffix -> remaining 500 answers
	emptyList bool                   // answer instances with zero results
	tls       bool                   // serve HTTPS with httptest's self-signed certificate
	wsGate    chan struct{}          // when set, websocket upgrades wait until it is closed

	srv *httptest.Server
	wg  sync.WaitGroup // websocket handlers
}

type fakeOutpost struct {
	PK, Name, Type, Token, Managed string
	Config                         map[string]any
	RefreshS                       int
	Providers                      []map[string]any
}

type fakeCert struct {
	Fingerprint, Cert, Key string
}

type fakeRequest struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
}

type fakeHello struct {
	Path  string
	Query url.Values
	Args  map[string]any
}

func newFakeCore(t *testing.T, outposts ...*fakeOutpost) *fakeCore {
	f := &fakeCore{t: t, outposts: map[string]*fakeOutpost{}, certs: map[string]*fakeCert{},
		conns: map[*websocket.Conn]bool{}, fail: map[string]int{}}
	for _, o := range outposts {
		f.outposts[o.Token] = o
	}
	return f
}

// start serves on addr ("" for a new loopback port) and registers cleanup.
func (f *fakeCore) start(addr string) {
	f.t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after a close
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("fake core: %v", err)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	if f.tls {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	f.t.Cleanup(f.stop)
}

func (f *fakeCore) stop() {
	if f.srv == nil {
		return
	}
	f.dropWebsockets(websocket.StatusGoingAway)
	f.srv.Close()
	f.wg.Wait()
	f.srv = nil
}

func (f *fakeCore) url() string { return f.srv.URL + f.prefix + "/" }

func (f *fakeCore) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone()})
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	op := f.outposts[token]
	for suffix, n := range f.fail {
		if n > 0 && strings.HasSuffix(path, suffix) {
			f.fail[suffix] = n - 1
			f.mu.Unlock()
			http.Error(w, `{"detail":"boom"}`, http.StatusInternalServerError)
			return
		}
	}
	f.mu.Unlock()
	if op == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"detail":"Token invalid/expired"}`))
		return
	}
	switch {
	case strings.HasPrefix(path, "/ws/outpost/"):
		f.serveWebsocket(w, r, path)
	case path == "/api/v3/outposts/instances/":
		f.mu.Lock()
		var results []any
		if !f.emptyList {
			obj := map[string]any{
				"pk": op.PK, "name": op.Name, "type": op.Type, "providers": []int{1},
				"providers_obj": []any{}, "service_connection": nil, "service_connection_obj": nil,
				"refresh_interval_s": op.RefreshS, "token_identifier": "ak-outpost-" + op.PK + "-api",
				"config": op.Config, "managed": nil, "a_newer_field": map[string]any{"x": 1},
			}
			if op.Managed != "" {
				obj["managed"] = op.Managed
			}
			results = append(results, obj)
		}
		data, _ := json.Marshal(page(results, 1, 1)) // under the lock: tests edit Config
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	case path == "/api/v3/root/config/":
		writeJSON(w, map[string]any{"cache_timeout_flows": 300, "capabilities": []string{},
			"error_reporting": map[string]any{"enabled": false}})
	case path == "/api/v3/outposts/"+op.Type+"/":
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		if n < 1 || size < 1 {
			http.Error(w, "bad page", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		var items []any
		for i := (n - 1) * size; i < len(op.Providers) && i < n*size; i++ {
			items = append(items, op.Providers[i])
		}
		pages := (len(op.Providers) + size - 1) / size
		f.mu.Unlock()
		writeJSON(w, page(items, n, pages))
	case strings.HasPrefix(path, "/api/v3/crypto/certificatekeypairs/"):
		rest := strings.TrimPrefix(path, "/api/v3/crypto/certificatekeypairs/")
		id, view, _ := strings.Cut(rest, "/")
		f.mu.Lock()
		c := f.certs[id]
		f.mu.Unlock()
		switch {
		case c == nil:
			http.NotFound(w, r)
		case view == "":
			writeJSON(w, map[string]any{"pk": id, "name": "cert", "fingerprint_sha256": c.Fingerprint})
		case view == "view_certificate/":
			writeJSON(w, map[string]any{"data": c.Cert})
		case view == "view_private_key/":
			writeJSON(w, map[string]any{"data": c.Key})
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func page(results []any, n, pages int) map[string]any {
	if results == nil {
		results = []any{}
	}
	next := 0
	if n < pages {
		next = n + 1
	}
	return map[string]any{
		"pagination": map[string]any{"next": next, "previous": max(n-1, 0), "count": len(results),
			"current": n, "total_pages": pages, "start_index": 1, "end_index": len(results)},
		"results":      results,
		"autocomplete": map[string]any{},
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeCore) serveWebsocket(w http.ResponseWriter, r *http.Request, path string) {
	if f.wsGate != nil {
		select {
		case <-f.wsGate:
		case <-r.Context().Done():
			return
		}
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	f.wg.Add(1)
	defer f.wg.Done()
	f.mu.Lock()
	f.conns[conn] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, conn)
		f.mu.Unlock()
		conn.CloseNow()
	}()
	ctx := context.Background()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				f.mu.Lock()
				f.closes = append(f.closes, code)
				f.mu.Unlock()
			}
			return
		}
		var m struct {
			Instruction int            `json:"instruction"`
			Args        map[string]any `json:"args"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.Instruction == 1 {
			f.mu.Lock()
			f.hellos = append(f.hellos, fakeHello{r.URL.Path, r.URL.Query(), m.Args})
			f.mu.Unlock()
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn.Write(wctx, websocket.MessageText, []byte(`{"instruction":0,"args":{}}`))
		cancel()
	}
}

// send writes a control message to every connected outpost.
func (f *fakeCore) send(msg string) {
	f.mu.Lock()
	var conns []*websocket.Conn
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.Write(ctx, websocket.MessageText, []byte(msg))
		cancel()
	}
}

// dropWebsockets closes every control channel, as a restarting core does.
func (f *fakeCore) dropWebsockets(code websocket.StatusCode) {
	f.mu.Lock()
	var conns []*websocket.Conn
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.Close(code, "service restart") })
	}
	wg.Wait()
}

func (f *fakeCore) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

func (f *fakeCore) helloList() []fakeHello {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeHello(nil), f.hellos...)
}

func (f *fakeCore) requestList() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// count returns how many requests went to a path ending in suffix.
func (f *fakeCore) count(suffix string) int {
	n := 0
	for _, r := range f.requestList() {
		if strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

func (f *fakeCore) edit(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}
