package proxy

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestSessionEncoding: whatever form a session takes, loading it gives
// back the claims and the very token that were saved (the token is passed
// on in X-authentik-jwt, where one changed byte breaks its signature).
func TestSessionEncoding(t *testing.T) {
	const clientID = "Oo5eeShu0ahyeiquaiVaeThooj5ahph0Iefiez7A"
	enc := base64.RawURLEncoding
	jwt := func(header, payload string) string {
		return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." +
			enc.EncodeToString([]byte("signature-bytes-0123456789abcdef"))
	}
	fromToken := func(raw string) *claims {
		c, err := claimsFromJWT(raw)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	hs256 := `{"alg":"HS256","typ":"JWT"}`
	nonCanonical := jwt(hs256, `{"sub":"x"}`)
	nonCanonical = nonCanonical[:len(nonCanonical)-1] + "h" // trailing bits set
	tests := []struct {
		name string
		c    *claims
		form byte // first byte of the stored payload
	}{
		{"authentik login, HS256", realisticLogin(t, 1, 32), packedForm},
		{"authentik login, RS256", realisticLogin(t, 2, 256), packedForm},
		{"non-ASCII claims", fromToken(jwt(hs256, `{"sub":"u1","name":"Zoë Ünal","groups":["ops"]}`)), tokenForm},
		{"uppercase hex and short runs", fromToken(jwt(hs256, `{"sub":"ABCDEF0123456789ABCDEF","sid":"abc","exp":17}`)), packedForm},
		{"claims edited after decoding", func() *claims {
			c := fromToken(jwt(hs256, `{"sub":"u1","email":"a@example.com"}`))
			c.Email = "other@example.com"
			return c
		}(), '{'},
		{"opaque token", &claims{Sub: "u1", RawToken: "opaque-token"}, '{'},
		{"non-canonical base64", &claims{Sub: "x", RawToken: nonCanonical}, '{'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := encodeClaims(tt.c, clientID)
			if err != nil {
				t.Fatal(err)
			}
			if data[0] != tt.form {
				t.Errorf("stored form %q, want %q", data[0], tt.form)
			}
			got, err := decodeClaims(data, clientID)
			if err != nil {
				t.Fatal(err)
			}
			want := *tt.c
			want.RawIDToken = "" // not kept: sign-out uses RawToken
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("decoded claims differ:\ngot  %+v\nwant %+v", got, &want)
			}
			if tt.form == packedForm && len(data) >= len(tt.c.RawToken) {
				t.Errorf("packed session of %d bytes for a token of %d", len(data), len(tt.c.RawToken))
			}
		})
	}
}

// TestSessionEncodingOldJSON: sessions written before the token forms
// (claims as JSON, the ID token included) still load.
func TestSessionEncodingOldJSON(t *testing.T) {
	old := `{"sub":"u1","email":"a@example.com","groups":["g"],"raw_token":"a.b.c","raw_id_token":"d.e.f"}`
	c, err := decodeClaims([]byte(old), "client")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sub != "u1" || c.RawToken != "a.b.c" || len(c.Groups) != 1 {
		t.Fatalf("decoded %+v", c)
	}
}

// TestSessionDecodingBadInput: damaged payloads are errors, never panics.
func TestSessionDecodingBadInput(t *testing.T) {
	good, err := encodeClaims(realisticLogin(t, 3, 32), "client")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"form byte only", []byte{packedForm}},
		{"header longer than data", []byte{packedForm, 0x7f, 'a'}},
		{"truncated", good[:len(good)/3]},
		{"unknown fragment", []byte{packedForm, 1, 0xfe, 0}},
		{"truncated hex run", []byte{packedForm, 2, packHex, 200, 0}},
		{"not JSON", []byte("garbage")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeClaims(tt.data, "client"); err == nil {
				t.Error("decoded without error")
			}
		})
	}
}

// TestPackRoundTrip: pack and unpack are inverse on any ASCII input, with
// or without the provider's extra fragment.
func TestPackRoundTrip(t *testing.T) {
	if n := len(packFragments) + 1; n > packHex-0x80 {
		t.Fatalf("%d fragments do not fit in the bytes 0x80..0x%x", n, packHex-1)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := `{}[]":,0123456789abcdefABCDEF xyz_-./@` + strings.Join(packFragments[:20], "")
	for i := range 2000 {
		n := rng.IntN(600)
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		in := b.String()
		for _, d := range []packDict{{}, {extra: "client-id-x"}} {
			p, ok := d.pack([]byte(in))
			if !ok {
				t.Fatalf("input %d: pack refused ASCII", i)
			}
			out, err := d.unpack(p)
			if err != nil || string(out) != in {
				t.Fatalf("input %d: round trip gave %q, %v; want %q", i, out, err, in)
			}
		}
	}
	if _, ok := (packDict{}).pack([]byte("caf\xc3\xa9")); ok {
		t.Error("pack accepted non-ASCII input")
	}
}

// TestSessionEncodingJSONShape: the JSON form never carries the ID token.
func TestSessionEncodingJSONShape(t *testing.T) {
	data, err := encodeClaims(&claims{Sub: "u", RawToken: "opaque", RawIDToken: "id.token.here"}, "c")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["raw_id_token"]; ok {
		t.Errorf("JSON session keeps the ID token: %s", data)
	}
}
