package proxy

import (
	"encoding/hex"
	"errors"
)

// A session keeps the login's JWT, and a JWT's header and payload are
// ASCII JSON in which most bytes are claim names, authentik's constant
// values and lowercase hex (sub, sid, uid). pack shrinks that JSON without a
// general compressor, whose per-call state (tens of KiB) would be paid on
// every request: bytes below 0x80 stand for themselves, packHex starts a run
// of hex digits stored two to a byte, and every other byte from 0x80 up is a
// fragment of packFragments (or one of the caller's extras, such as the
// client ID that fills aud and azp). Unpacking is one pass.

// packHex introduces a hex run: a length byte (digits, even, at most 254),
// then half as many bytes.
const packHex = 0xff

// minHexRun is the shortest run packed: ten digits are a Unix time (exp,
// iat, auth_time), shorter runs save next to nothing.
const minHexRun = 10

// packFragments are the JSON fragments of authentik's ID and access tokens
// (claim names with their punctuation, and constant values), and of the
// JWT header. Order is the encoding: entries may be added at the end, never
// moved or removed, or stored sessions would unpack wrongly.
var packFragments = []string{
	`{"iss":"`, `","sub":"`, `","aud":"`, `","exp":`, `,"exp":`, `,"iat":`, `,"auth_time":`,
	`,"acr":"goauthentik.io/providers/oauth2/default"`, `"acr":"`, `,"amr":["pwd"]`, `,"amr":[`,
	`,"sid":"`, `","sid":"`, `,"email":"`, `","email":"`, `,"email_verified":true`, `,"email_verified":false`,
	`","email_verified":`, `,"name":"`, `","name":"`, `","given_name":"`, `","preferred_username":"`,
	`","nickname":"`, `","groups":[`, `,"groups":[`, `"entitlements":[]`, `,"entitlements":[`,
	`,"ak_proxy":{"user_attributes":{}`, `,"ak_proxy":{"user_attributes":{`, `,"is_superuser":false}`,
	`,"is_superuser":true}`, `"is_superuser":`, `"backend_override":`, `"host_header":`,
	`"additionalHeaders":{`, `,"azp":"`, `","azp":"`, `","uid":"`, `,"uid":"`, `","scope":"`,
	`,"scope":"`, `openid`, ` email`, ` profile`, ` ak_proxy`, ` entitlements`, ` offline_access`,
	`goauthentik.io/api`, `,"nonce":"`, `","nonce":"`, `","at_hash":"`, `,"at_hash":"`, `https://`,
	`http://`, `/application/o/`, `{"alg":"HS256","typ":"JWT"}`, `{"alg":"RS256","kid":"`,
	`{"alg":"ES256","kid":"`, `","typ":"JWT"}`, `{"typ":"JWT","alg":"HS256"}`, `{"typ":"JWT","alg":"RS256"`,
	`,"kid":"`, `"alg":"`, `"typ":"JWT"`, `@example.com`, `","`, `":"`, `":`, `,"`, `"}`, `"]`,
	`"sub":"`, `"aud":"`, `"exp":`, `"iat":`, `"auth_time":`, `"amr":`, `"sid":"`, `"email":"`,
	`"email_verified":`, `"name":"`, `"given_name":"`, `"preferred_username":"`, `"nickname":"`,
	`"groups":[`, `"entitlements":`, `"ak_proxy":`, `"user_attributes":`, `"azp":"`, `"uid":"`,
	`"scope":"`, `"nonce":"`, `"iss":"`,
}

// packDict is the fragment table of one provider: packFragments, then
// extra (its client ID, which fills aud and azp), when extra is long enough
// to be worth a byte.
type packDict struct{ extra string }

// fragment returns fragment k, or false.
func (d packDict) fragment(k int) (string, bool) {
	if k < len(packFragments) {
		return packFragments[k], true
	}
	if k == len(packFragments) && len(d.extra) >= 4 {
		return d.extra, true
	}
	return "", false
}

// pack encodes ASCII JSON; it reports false for input with a byte of 0x80
// or above, which the encoding has no room for.
func (d packDict) pack(in []byte) ([]byte, bool) {
	out := make([]byte, 0, len(in)/2)
	for i := 0; i < len(in); {
		c := in[i]
		if c >= 0x80 {
			return nil, false
		}
		if n := hexRun(in[i:]); n >= minHexRun {
			out = append(out, packHex, byte(n))
			out, _ = hex.AppendDecode(out, in[i:i+n]) // hexRun checked every digit
			i += n
			continue
		}
		best, bestLen := -1, 1
		rest := in[i:]
		for k, f := range packFragments {
			if f[0] == c && len(f) > bestLen && len(rest) >= len(f) && string(rest[:len(f)]) == f {
				best, bestLen = k, len(f)
			}
		}
		if f, ok := d.fragment(len(packFragments)); ok && len(f) > bestLen && len(rest) >= len(f) &&
			string(rest[:len(f)]) == f {
			best, bestLen = len(packFragments), len(f)
		}
		if best >= 0 {
			out = append(out, byte(0x80+best))
			i += bestLen
			continue
		}
		out = append(out, c)
		i++
	}
	return out, true
}

// hexRun returns the length of the lowercase hex run at the start of b,
// made even and at most 254.
func hexRun(b []byte) int {
	n := 0
	for n < len(b) && n < 254 && (b[n] >= '0' && b[n] <= '9' || b[n] >= 'a' && b[n] <= 'f') {
		n++
	}
	return n &^ 1
}

// unpack reverses pack.
func (d packDict) unpack(in []byte) ([]byte, error) {
	out := make([]byte, 0, 3*len(in)) // packed tokens are about a third of their JSON
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c < 0x80:
			out = append(out, c)
		case c == packHex:
			if i+1 >= len(in) {
				return nil, errors.New("unpacking: truncated hex run")
			}
			n := int(in[i+1]) / 2
			if i+2+n > len(in) {
				return nil, errors.New("unpacking: truncated hex run")
			}
			out = hex.AppendEncode(out, in[i+2:i+2+n])
			i += 1 + n
		default:
			f, ok := d.fragment(int(c - 0x80))
			if !ok {
				return nil, errors.New("unpacking: unknown fragment")
			}
			out = append(out, f...)
		}
	}
	return out, nil
}
