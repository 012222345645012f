// Package certs provides the TLS certificate of `parley serve`: a self-signed one made on
// first start and kept in the data directory, one loaded from files, or one obtained by
// ACME (RFC 8555) for a public host name.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// selfSignedLifetime stays under the 398 days browsers accept for a leaf certificate.
const selfSignedLifetime = 397 * 24 * time.Hour

// Names returns the DNS names and IP addresses a self-signed certificate for this machine
// should cover: localhost, the host name, and the addresses of every interface.
func Names() (dns []string, ips []net.IP) {
	dns = []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		dns = append(dns, h)
	}
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			ips = append(ips, n.IP)
		}
	}
	return dns, ips
}

// SelfSigned returns the certificate kept in dir (cert.pem, key.pem), making a new one
// when there is none, it expires within a week, or it does not cover every name given.
func SelfSigned(dir string, dns []string, ips []net.IP, now time.Time) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && covers(c.Leaf, dns, ips, now) {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Parley self-signed"}, CommonName: dns[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

func covers(leaf *x509.Certificate, dns []string, ips []net.IP, now time.Time) bool {
	if leaf == nil || now.Add(7*24*time.Hour).After(leaf.NotAfter) {
		return false
	}
	for _, d := range dns {
		if !slices.Contains(leaf.DNSNames, d) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// Fingerprint is the SHA-256 of the certificate's DER, as colon-separated hex, the form
// browsers show.
func Fingerprint(c tls.Certificate) string {
	if len(c.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.Certificate[0])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// Mode is how `parley serve` gets its certificate.
type Mode string

const (
	Off   Mode = "off"   // plain HTTP
	Auto  Mode = "auto"  // self-signed, kept in the data directory
	Files Mode = "files" // --tls-cert and --tls-key
	ACME  Mode = "acme"  // Let's Encrypt or another ACME CA, for --acme-host names
)

// Config chooses and configures the certificate.
type Config struct {
	Mode      Mode
	DataDir   string   // Auto keeps its certificate in DataDir/tls, ACME its cache in DataDir/acme
	CertFile  string   // Files
	KeyFile   string   // Files
	ACMEHosts []string // ACME: the public host names to get a certificate for
	ACMEEmail string   // ACME: contact address for the CA (optional)
}

// TLSConfig returns the server's TLS configuration (nil for Off) and, for Auto and Files,
// the certificate, for its fingerprint.
func TLSConfig(cfg Config, now time.Time) (*tls.Config, *tls.Certificate, error) {
	switch cfg.Mode {
	case Off, "":
		return nil, nil, nil
	case Auto:
		dns, ips := Names()
		c, err := SelfSigned(filepath.Join(cfg.DataDir, "tls"), dns, ips, now)
		if err != nil {
			return nil, nil, err
		}
		return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, &c, nil
	case Files:
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("load certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, &c, nil
	case ACME:
		if len(cfg.ACMEHosts) == 0 {
			return nil, nil, errors.New("ACME needs at least one public host name (--acme-host)")
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(cfg.ACMEHosts...),
			Cache:      autocert.DirCache(filepath.Join(cfg.DataDir, "acme")),
			Email:      cfg.ACMEEmail,
		}
		// TLS-ALPN-01 (RFC 8737) on this listener: it must be reachable on port 443.
		return m.TLSConfig(), nil, nil
	}
	return nil, nil, fmt.Errorf("unknown TLS mode %q (want off, auto, files or acme)", cfg.Mode)
}
