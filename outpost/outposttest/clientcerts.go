package outposttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// CA is a certificate authority for client certificates, for tests of the
// Mutual TLS stage: its CertPEM is the certificate_data of a
// certificatekeypair the stage's certificate_authorities name, and Issue
// makes the certificates clients present.
type CA struct {
	// CertPEM and KeyPEM are the authority's certificate and key.
	CertPEM, KeyPEM string

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA creates a self-signed authority named commonName, valid for a
// year (ECDSA P-256).
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("outposttest: generating a key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"outposttest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("outposttest: creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := keyToPEM(key)
	if err != nil {
		return nil, err
	}
	return &CA{CertPEM: certToPEM(der), KeyPEM: keyPEM, cert: cert, key: key}, nil
}

// Issue makes a client certificate (extended key usage clientAuth) with
// the subject's common name commonName and, when email is not empty, the
// emailAddress attribute and an email subject alternative name. It
// returns the certificate and its key in PEM.
func (ca *CA) Issue(commonName, email string) (certPEM, keyPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("outposttest: generating a key: %w", err)
	}
	now := time.Now()
	subject := pkix.Name{CommonName: commonName, Organization: []string{"outposttest"}}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 1, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if email != "" {
		subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: oidEmailAddress, Value: email})
		tmpl.EmailAddresses = []string{email}
	}
	tmpl.Subject = subject
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", fmt.Errorf("outposttest: creating the client certificate: %w", err)
	}
	keyPEM, err = keyToPEM(key)
	if err != nil {
		return "", "", err
	}
	return certToPEM(der), keyPEM, nil
}

func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func certToPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func keyToPEM(key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("outposttest: encoding the key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}
