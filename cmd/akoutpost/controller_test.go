package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
)

// The controller command polls the core the environment names, serves its
// metrics and status on the metrics address, "controller status" prints
// the status, and a cancelled context (SIGTERM) stops it.
func TestControllerCommand(t *testing.T) {
	var polls, denied atomic.Int64
	core := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer api-token" {
			denied.Add(1)
			http.Error(w, `{"detail":"Token invalid/expired"}`, http.StatusForbidden)
			return
		}
		if r.URL.Path == "/api/v3/outposts/instances/" {
			polls.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"pagination":{"next":0,"count":0},"results":[]}`)
	}))
	defer core.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{
		"AUTHENTIK_HOST": core.URL + "/", "AUTHENTIK_TOKEN": "api-token",
		"AUTHENTIK_LISTEN__METRICS": addr, "AKOUTPOST_CONTROLLER_POLL": "50ms",
	}
	var stderr syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- command{stdout: io.Discard, stderr: &stderr, getenv: envOf(vars)}.main(ctx, []string{"controller"})
	}()

	var status struct {
		Time     time.Time `json:"time"`
		Outposts []any     `json:"outposts"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out bytes.Buffer
		code := command{stdout: &out, stderr: io.Discard, getenv: envOf(vars)}.main(context.Background(), []string{"controller", "status"})
		if code == 0 && json.Unmarshal(out.Bytes(), &status) == nil && !status.Time.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status within 20s: exit %d, %q; log: %s", code, out.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `akoutpost_controller_polls_total{result="ok"}`) {
		t.Errorf("metrics lack the poll counter:\n%s", body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("controller exited %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("controller did not stop")
	}
	if n := denied.Load(); n != 0 || polls.Load() == 0 {
		t.Errorf("%d requests without the token, %d polls", n, polls.Load())
	}

	// Without a running controller, status fails clearly.
	var errOut bytes.Buffer
	if code := (command{stdout: io.Discard, stderr: &errOut, getenv: envOf(vars)}).main(context.Background(), []string{"controller", "status"}); code != 1 || !strings.Contains(errOut.String(), "controller status") {
		t.Errorf("status without a controller: exit %d, %q", code, errOut.String())
	}
}
