package outposttest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// signJWT returns a compact JWS of claims: HS256 when key is a []byte,
// RS256 when it is an *rsa.PrivateKey.
func signJWT(key any, kid string, claims map[string]any) (string, error) {
	header := map[string]any{"typ": "JWT"}
	switch key.(type) {
	case []byte:
		header["alg"] = "HS256"
	case *rsa.PrivateKey:
		header["alg"] = "RS256"
	default:
		return "", fmt.Errorf("unsupported signing key %T", key)
	}
	if kid != "" {
		header["kid"] = kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	switch k := key.(type) {
	case []byte:
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	case *rsa.PrivateKey:
		sum := sha256.Sum256([]byte(input))
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			return "", err
		}
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// verifyJWT checks a token signed by signJWT with key and returns its
// claims. Expiry is the caller's business.
func verifyJWT(token string, key any) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("bad signature encoding")
	}
	input := parts[0] + "." + parts[1]
	var header struct {
		Alg string `json:"alg"`
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil {
		return nil, errors.New("bad header")
	}
	switch k := key.(type) {
	case []byte:
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(input))
		if header.Alg != "HS256" || !hmac.Equal(sig, mac.Sum(nil)) {
			return nil, errors.New("bad signature")
		}
	case *rsa.PrivateKey:
		sum := sha256.Sum256([]byte(input))
		if header.Alg != "RS256" || rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig) != nil {
			return nil, errors.New("bad signature")
		}
	default:
		return nil, fmt.Errorf("unsupported key %T", key)
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("bad claims encoding")
	}
	var claims map[string]any
	if err := json.Unmarshal(cb, &claims); err != nil {
		return nil, errors.New("bad claims")
	}
	return claims, nil
}
