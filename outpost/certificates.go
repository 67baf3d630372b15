package outpost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
)

// Certificates fetches certificate/key pairs from the core and caches them
// by id and SHA-256 fingerprint: a [Certificates.Get] asks the core for the
// pair's fingerprint and downloads the certificate and key only when the
// fingerprint changed. [Certificates.Cached] does no I/O, so TLS handshakes
// can call it concurrently with refreshes.
type Certificates struct {
	api *Client
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*certEntry
}

type certEntry struct {
	// fetch serialises fetches of one id; reading cert needs only mu.
	fetch       sync.Mutex
	fingerprint string
	cert        *tls.Certificate
}

// NewCertificates returns an empty cache fetching through api. A nil logger
// discards.
func NewCertificates(api *Client, log *slog.Logger) *Certificates {
	return &Certificates{api: api, log: logger(log), entries: map[string]*certEntry{}}
}

// Get returns the pair with id, downloading it when its fingerprint differs
// from the cached one. A certificate without a private key (the core's key
// data is empty) is returned with a nil PrivateKey: it serves to verify
// clients, not to terminate TLS. On error the cached pair, if any, stays in
// place for Cached.
func (c *Certificates) Get(ctx context.Context, id string) (*tls.Certificate, error) {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return nil, fmt.Errorf("certificate %q: not a valid id", id)
	}
	e := c.entry(id)
	e.fetch.Lock()
	defer e.fetch.Unlock()

	base := "/crypto/certificatekeypairs/" + url.PathEscape(id) + "/"
	var kp struct {
		Name        string  `json:"name"`
		Fingerprint *string `json:"fingerprint_sha256"`
	}
	if err := c.api.Get(ctx, base, nil, &kp); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	if kp.Fingerprint == nil || *kp.Fingerprint == "" {
		return nil, fmt.Errorf("certificate %s: the core reports no certificate data", id)
	}
	c.mu.Lock()
	cached, fp := e.cert, e.fingerprint
	c.mu.Unlock()
	if cached != nil && fp == *kp.Fingerprint {
		return cached, nil
	}

	c.log.Debug("fetching certificate and private key", "certificate", id, "name", kp.Name)
	var certData, keyData struct {
		Data string `json:"data"`
	}
	if err := c.api.Get(ctx, base+"view_certificate/", nil, &certData); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	if err := c.api.Get(ctx, base+"view_private_key/", nil, &keyData); err != nil {
		return nil, fmt.Errorf("certificate %s: private key: %w", id, err)
	}
	cert, err := parsePair(certData.Data, keyData.Data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	c.mu.Lock()
	e.cert, e.fingerprint = cert, *kp.Fingerprint
	c.mu.Unlock()
	return cert, nil
}

// Cached returns the last pair Get fetched for id, or nil. It does no I/O.
func (c *Certificates) Cached(id string) *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		return e.cert
	}
	return nil
}

func (c *Certificates) entry(id string) *certEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		e = &certEntry{}
		c.entries[id] = e
	}
	return e
}

// parsePair builds a tls.Certificate from PEM data. Key material never
// appears in errors.
func parsePair(certPEM, keyPEM string) (*tls.Certificate, error) {
	if strings.TrimSpace(keyPEM) != "" {
		pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			return nil, fmt.Errorf("parsing certificate and key: %w", err)
		}
		return &pair, nil
	}
	var pair tls.Certificate
	rest := []byte(certPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			pair.Certificate = append(pair.Certificate, block.Bytes)
		}
	}
	if len(pair.Certificate) == 0 {
		return nil, errors.New("no PEM certificate in the core's answer")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	pair.Leaf = leaf
	return &pair, nil
}
