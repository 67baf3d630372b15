package outposttest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startDemo starts the demo blueprint's core for one test.
func startDemo(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer(DemoBlueprint)
	if err != nil {
		t.Fatalf("NewServer(demo): %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// client returns an HTTP client whose idle connections close with the test.
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

type answer struct {
	status int
	header http.Header
	body   []byte
	json   any
}

func (a answer) obj() map[string]any { m, _ := a.json.(map[string]any); return m }

func (a answer) results() []any { r, _ := a.obj()["results"].([]any); return r }

// call sends a request with an optional bearer token and JSON body.
func call(t *testing.T, c *http.Client, method, url, token string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: data}
	_ = json.Unmarshal(data, &a.json)
	return a
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }
