package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy"
	"github.com/akoutpost/akoutpost/proxy/session"
)

// A host program mounts the provider in its own mux. Normally the outpost
// calls Apply with the core's configuration; here one provider object is
// given by hand to show what the provider consumes.
func Example() {
	// A zero Deps: no registry to share, no core to fetch certificates
	// from. An outpost's factory passes its own.
	p, err := proxy.New(outpost.Deps{}, proxy.Config{
		StrictHost:   true,
		SessionStore: &session.Memory{},
	})
	if err != nil {
		panic(err)
	}
	config := json.RawMessage(`{
		"pk": 1, "name": "whoami", "mode": "proxy",
		"external_host": "https://whoami.example.com", "internal_host": "http://127.0.0.1:8080",
		"client_id": "whoami-client", "client_secret": "secret", "cookie_secret": "0123456789ABCDEFGHIJKLMNOPQRSTUV",
		"access_token_validity": 86400, "scopes_to_request": ["openid", "profile", "email", "ak_proxy"],
		"assigned_application_slug": "whoami", "assigned_application_name": "Who am I",
		"oidc_configuration": {
			"issuer": "https://auth.example.com/application/o/whoami/",
			"authorization_endpoint": "https://auth.example.com/application/o/authorize/",
			"token_endpoint": "https://auth.example.com/application/o/token/",
			"userinfo_endpoint": "https://auth.example.com/application/o/userinfo/",
			"end_session_endpoint": "https://auth.example.com/application/o/whoami/end-session/",
			"introspection_endpoint": "https://auth.example.com/application/o/introspect/",
			"jwks_uri": "https://auth.example.com/application/o/whoami/jwks/"
		}
	}`)
	err = p.Apply(context.Background(), outpost.Update{
		Outpost:   outpost.Info{Name: "embedded", BrowserURL: "https://auth.example.com"},
		Providers: []json.RawMessage{config},
	})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/", p)

	// A browser without a session is sent to log in.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "https://whoami.example.com/hello?x=1", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))

	// A script gets 401 instead of a login page it cannot follow.
	r := httptest.NewRequest("GET", "https://whoami.example.com/api", nil)
	r.Header.Set("Accept", "application/json")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code)

	// Health checks answer on any host.
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "http://anything/outpost.goauthentik.io/ping", nil))
	fmt.Println(w.Code)
	// Output:
	// 302 https://whoami.example.com/outpost.goauthentik.io/start?rd=https%3A%2F%2Fwhoami.example.com%2Fhello%3Fx%3D1
	// 401
	// 204
}
