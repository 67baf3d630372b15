package ldap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
)

// tlsState holds the self-signed fallback certificate, made on first use.
type tlsState struct {
	once sync.Once
	self *tls.Certificate
	err  error
}

// tlsConfig is the TLS configuration of StartTLS and LDAPS: TLS 1.2 or
// newer, the certificate chosen per connection by SNI.
func (p *Provider) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: p.getCertificate,
	}
}

// loadCertificates fetches the providers' certificates. A failure keeps
// the certificate the provider had, or none (then the fallback is used).
func (p *Provider) loadCertificates(ctx context.Context, st *state) {
	certs := p.deps.certs
	if certs == nil {
		return
	}
	for _, rt := range st.providers {
		if rt.cfg.CertificateID == "" {
			rt.cert.Store(nil)
			continue
		}
		c, err := certs.Get(ctx, rt.cfg.CertificateID)
		if err != nil {
			p.logger().Warn("fetching an LDAP provider's certificate failed", "provider", rt.cfg.Name, "error", err)
			continue
		}
		rt.cert.Store(c)
	}
}

// getCertificate picks the certificate for a TLS handshake: the provider
// whose tls_server_name equals the SNI name, then one whose wildcard
// tls_server_name covers it, then the only certificate if all providers
// share one, else a self-signed one. authentik meant to match SNI too but
// compared pointers, so it never did.
func (p *Provider) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if st := p.state.Load(); st != nil {
		if c := pickCertificate(st, hello.ServerName); c != nil {
			return c, nil
		}
	}
	p.tls.once.Do(func() { p.tls.self, p.tls.err = selfSigned(p.cfg.Now()) })
	return p.tls.self, p.tls.err
}

func pickCertificate(st *state, sni string) *tls.Certificate {
	sni = strings.TrimSuffix(strings.ToLower(sni), ".")
	if sni != "" {
		for _, rt := range st.providers {
			if c := rt.cert.Load(); c != nil && strings.EqualFold(rt.cfg.TLSServerName, sni) {
				return c
			}
		}
		for _, rt := range st.providers {
			name := strings.ToLower(rt.cfg.TLSServerName)
			if c := rt.cert.Load(); c != nil && strings.HasPrefix(name, "*.") {
				if i := strings.IndexByte(sni, '.'); i > 0 && sni[i:] == name[1:] {
					return c
				}
			}
		}
	}
	var only *tls.Certificate
	for _, rt := range st.providers {
		c := rt.cert.Load()
		if c == nil {
			continue
		}
		if only != nil && only != c && !sameCert(only, c) {
			return nil
		}
		only = c
	}
	return only
}

func sameCert(a, b *tls.Certificate) bool {
	return len(a.Certificate) > 0 && len(b.Certificate) > 0 && string(a.Certificate[0]) == string(b.Certificate[0])
}

// selfSigned makes the fallback certificate, as authentik's outpost does
// when no provider has one: clients that do not verify (most LDAP setups
// with LDAPS on an internal network) still get encryption.
func selfSigned(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ldap: generating the fallback key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ldap: generating a serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "authentik default certificate", Organization: []string{"authentik"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"*"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ldap: creating the fallback certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
