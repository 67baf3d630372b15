package reconcile

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testTLS is the TLS material of the test engine's TCP listener.
type testTLS struct {
	ca, clientCert, clientKey, other []byte
}

// makeTLS writes a CA, the engine's certificate for 127.0.0.1 and key to
// dir (ca.pem, server.pem, server-key.pem) and returns the CA, a client
// pair it signed, and an unrelated CA.
func makeTLS(dir string) (testTLS, error) {
	var out testTLS
	caKey, caCert, caPEM, err := newCA("akoutpost test CA")
	if err != nil {
		return out, err
	}
	_, _, otherPEM, err := newCA("another CA")
	if err != nil {
		return out, err
	}
	serverPEM, serverKey, err := leaf(caCert, caKey, "engine", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return out, err
	}
	clientPEM, clientKey, err := leaf(caCert, caKey, "controller", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return out, err
	}
	for name, data := range map[string][]byte{"ca.pem": caPEM, "server.pem": serverPEM, "server-key.pem": serverKey} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return out, err
		}
	}
	return testTLS{ca: caPEM, clientCert: clientPEM, clientKey: clientKey, other: otherPEM}, nil
}

func newCA(name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), err
}

func leaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// A remote engine over TLS, as a Docker service connection with
// tls_verification and tls_authentication describes it; wrong or missing
// material is a clear error that never shows the key.
func TestDockerTLS(t *testing.T) {
	e := dockerEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cases := []struct {
		name          string
		ca, cert, key []byte
		wantErr       string
	}{
		{"verified both ways", e.tls.ca, e.tls.clientCert, e.tls.clientKey, ""},
		{"engine certificate from another CA", e.tls.other, e.tls.clientCert, e.tls.clientKey, "certificate"},
		{"no client certificate", e.tls.ca, nil, nil, "certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDocker(DockerConfig{Host: "tcp://" + e.tlsAddr, Connection: "conn-tls", CACert: tc.ca, ClientCert: tc.cert, ClientKey: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			_, err = d.Version(ctx)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				in := dockerInput(t, "99999999-93c5-4d6a-b7e0-5f21c8d9a3b4")
				defer d.Delete(context.Background(), in.UUID)
				if res, err := d.Apply(ctx, in); err != nil || res.Writes() != 1 {
					t.Fatalf("Apply over TLS: %+v, %v", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error %v", err)
			}
		})
	}
}
