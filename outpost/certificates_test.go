package outpost_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

// newPair makes a self-signed certificate and its key as PEM, and the
// certificate's SHA-256 fingerprint as authentik reports it.
func newPair(t *testing.T, cn string) (certPEM, keyPEM, fingerprint string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), hex.EncodeToString(sum[:])
}

func TestCertificatesFetchOnFingerprintChange(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	const id = "5f0e2b1a-0000-4000-8000-000000000001"
	c1, k1, fp1 := newPair(t, "one.example")
	core.edit(func() { core.certs[id] = &fakeCert{Fingerprint: fp1, Cert: c1, Key: k1} })

	u, _ := url.Parse(core.url())
	api, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	certs := outpost.NewCertificates(api, nil)
	ctx := context.Background()

	if certs.Cached(id) != nil {
		t.Fatal("Cached before any Get")
	}
	for range 3 {
		cert, err := certs.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Leaf == nil || cert.Leaf.Subject.CommonName != "one.example" || cert.PrivateKey == nil {
			t.Fatalf("got %+v", cert.Leaf)
		}
	}
	if n := core.count("/view_certificate/"); n != 1 {
		t.Errorf("downloaded the certificate %d times with an unchanged fingerprint, want 1", n)
	}
	if n := core.count("/view_private_key/"); n != 1 {
		t.Errorf("downloaded the key %d times, want 1", n)
	}
	if n := core.count(id + "/"); n != 3 {
		t.Errorf("checked the fingerprint %d times, want 3", n)
	}

	// A renewed certificate is picked up: new fingerprint, new download.
	c2, k2, fp2 := newPair(t, "two.example")
	core.edit(func() { core.certs[id] = &fakeCert{Fingerprint: fp2, Cert: c2, Key: k2} })
	cert, err := certs.Get(ctx, id)
	if err != nil || cert.Leaf.Subject.CommonName != "two.example" {
		t.Fatalf("after renewal: %v, %v", cert, err)
	}
	if certs.Cached(id) != cert || core.count("/view_certificate/") != 2 {
		t.Error("the renewed certificate was not downloaded once and cached")
	}

	// A failed check keeps the cached pair for TLS handshakes.
	core.edit(func() { delete(core.certs, id) })
	if _, err := certs.Get(ctx, id); err == nil {
		t.Error("Get of a deleted certificate succeeded")
	}
	if certs.Cached(id) != cert {
		t.Error("a failed Get dropped the cached certificate")
	}
}

// An empty key gives a certificate without a key (used to verify clients),
// not an error.
func TestCertificatesWithoutKey(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	const id = "5f0e2b1a-0000-4000-8000-000000000002"
	c, _, fp := newPair(t, "ca.example")
	core.edit(func() { core.certs[id] = &fakeCert{Fingerprint: fp, Cert: c, Key: ""} })
	u, _ := url.Parse(core.url())
	api, _ := outpost.NewClient(outpost.ClientConfig{URL: u, Token: testToken})
	cert, err := outpost.NewCertificates(api, nil).Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if cert.PrivateKey != nil || cert.Leaf == nil || cert.Leaf.Subject.CommonName != "ca.example" {
		t.Fatalf("got key=%v leaf=%v", cert.PrivateKey, cert.Leaf)
	}
}

// TLS handshakes read the cache while refreshes replace it.
func TestCertificatesConcurrent(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	const id = "5f0e2b1a-0000-4000-8000-000000000003"
	c, k, fp := newPair(t, "c.example")
	core.edit(func() { core.certs[id] = &fakeCert{Fingerprint: fp, Cert: c, Key: k} })
	u, _ := url.Parse(core.url())
	api, _ := outpost.NewClient(outpost.ClientConfig{URL: u, Token: testToken})
	certs := outpost.NewCertificates(api, nil)
	cfg := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.Cached(id), nil }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := certs.Get(context.Background(), id); err != nil {
				t.Error(err)
			}
			cfg.GetCertificate(nil)
		})
	}
	wg.Wait()
	if n := core.count("/view_certificate/"); n != 1 {
		t.Errorf("%d downloads for concurrent Gets of one fingerprint, want 1", n)
	}
	if _, err := certs.Get(context.Background(), "../x"); err == nil || !strings.Contains(err.Error(), "not a valid id") {
		t.Errorf("Get with a path in the id: %v", err)
	}
}
