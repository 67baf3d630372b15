package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/proxy/session"
)

// realisticLogin returns what a login through authentik yields for user i:
// the claims of a JWT access token as authentik's default scope mappings
// issue them (64-hex subject and session hash, profile with four groups,
// ak_proxy, entitlements), the access token itself and an ID token. Both
// tokens carry sigLen bytes of signature (32 for HS256 with the client
// secret, which is what authentik's proxy providers use: they have no
// signing key; 256 for RS256 with a 2048-bit key, for comparison).
// Signatures are random bytes: the store never verifies them.
func realisticLogin(tb testing.TB, i, sigLen int) *claims {
	tb.Helper()
	hexOf := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	now := time.Now()
	user := fmt.Sprintf("user%06d", i)
	sub, sid := hexOf(32), hexOf(32)
	clientID := "Oo5eeShu0ahyeiquaiVaeThooj5ahph0Iefiez7A"
	// authentik writes claims in this order (Python dicts keep insertion
	// order); encoding/json would sort map keys, so the payload is spelled
	// out.
	claimsJSON := func(extra string) []byte {
		return fmt.Appendf(nil, `{"iss":"https://authentik.example.com/application/o/app/","sub":"%s",`+
			`"aud":"%s","exp":%d,"iat":%d,"auth_time":%d,"acr":"goauthentik.io/providers/oauth2/default",`+
			`"amr":["pwd"],"sid":"%s","email":"%s@example.com","email_verified":true,"name":"User %s",`+
			`"given_name":"User %s","preferred_username":"%s","nickname":"%s",`+
			`"groups":["authentik Admins","staff","engineering","vpn-users"],"entitlements":[],`+
			`"ak_proxy":{"user_attributes":{},"is_superuser":false}%s}`,
			sub, clientID, now.Add(time.Hour).Unix(), now.Unix(), now.Unix(), sid, user, user, user, user, user, extra)
	}
	mint := func(extra string) string {
		h := []byte(`{"alg":"HS256","typ":"JWT"}`)
		if sigLen != 32 {
			h = fmt.Appendf(nil, `{"alg":"RS256","kid":"%s","typ":"JWT"}`, hexOf(16))
		}
		sig := make([]byte, sigLen)
		rand.Read(sig)
		enc := base64.RawURLEncoding
		return enc.EncodeToString(h) + "." + enc.EncodeToString(claimsJSON(extra)) + "." + enc.EncodeToString(sig)
	}
	idToken := mint(fmt.Sprintf(`,"nonce":"%s"`, hexOf(16)))
	access := mint(fmt.Sprintf(`,"azp":"%s","uid":"%s","scope":"openid email profile ak_proxy entitlements"`,
		clientID, hexOf(16)))
	// What verifyTokens produces: claims decoded from the access token.
	c, err := claimsFromJWT(access)
	if err != nil {
		tb.Fatal(err)
	}
	c.RawIDToken = idToken
	return c
}

// claimsFromJWT decodes the payload of an unverified token the way
// verifyJWT does after verification.
func claimsFromJWT(raw string) (*claims, error) {
	var c claims
	parts := splitJWT(raw)
	if parts == nil {
		return nil, fmt.Errorf("not a JWT")
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(p, &c); err != nil {
		return nil, err
	}
	c.RawToken = raw
	return &c, nil
}

// BenchmarkMemorySessions100k stores 100,000 sessions as the proxy stores
// them after a login, in the in-memory store, and reports the heap they
// retain per session (issue 6: at most 1 KiB).
func BenchmarkMemorySessions100k(b *testing.B) {
	const n = 100_000
	for _, sig := range []struct {
		name string
		len  int
	}{{"HS256", 32}, {"RS256-2048", 256}} {
		b.Run(sig.name, func(b *testing.B) {
			var perSession float64
			for b.Loop() {
				// Every session its own user and tokens, minted while
				// storing: they become garbage once saved, so the heap
				// difference is what the store keeps.
				perSession = measureSessions(b, n, func(i int) *claims { return realisticLogin(b, i, sig.len) })
			}
			b.ReportMetric(perSession, "bytes/session")
			b.ReportMetric(float64(len(realisticLogin(b, 0, sig.len).RawToken)), "token-bytes")
		})
	}
}

func measureSessions(b *testing.B, n int, login func(int) *claims) float64 {
	b.Helper()
	a, _ := fuzzApps(b)
	a.clientID = "Oo5eeShu0ahyeiquaiVaeThooj5ahph0Iefiez7A"
	store := &session.Memory{}
	a.p.store = store
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		if _, err := a.saveSession(ctx, login(i)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if store.Len() != n {
		b.Fatalf("store holds %d sessions, want %d", store.Len(), n)
	}
	runtime.KeepAlive(store)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkSessionLookupLogin is BenchmarkSessionLookup with the session a
// real login leaves (the packed token form) rather than hand-built claims
// (the JSON form): the cost of unpacking on every request.
func BenchmarkSessionLookupLogin(b *testing.B) {
	single, _ := fuzzApps(b)
	ck := sessionCookie(b, single, realisticLogin(b, 1, 32))
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	r.Header.Set("Cookie", ck)
	b.ReportAllocs()
	for b.Loop() {
		if c, _, _, _ := single.loadSession(r); c == nil || c.RawToken == "" {
			b.Fatal("no session")
		}
	}
}

// BenchmarkSessionDecode compares decoding a login's session in the packed
// form with decoding it in the JSON form sessions had before (claims, the
// access token and the ID token as one JSON object).
func BenchmarkSessionDecode(b *testing.B) {
	c := realisticLogin(b, 1, 32)
	packed, err := encodeClaims(c, "client")
	if err != nil || packed[0] != packedForm {
		b.Fatalf("encoding: %v", err)
	}
	type before struct {
		*claims
		RawIDToken string `json:"raw_id_token"`
	}
	old, err := json.Marshal(before{c, c.RawIDToken})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("packed", func(b *testing.B) {
		b.ReportAllocs()
		b.ReportMetric(float64(len(packed)), "stored-bytes")
		for b.Loop() {
			if _, err := decodeClaims(packed, "client"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-before", func(b *testing.B) {
		b.ReportAllocs()
		b.ReportMetric(float64(len(old)), "stored-bytes")
		for b.Loop() {
			var out claims
			if err := json.Unmarshal(old, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
