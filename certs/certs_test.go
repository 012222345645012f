package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSignedIsKeptAndServes(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	dns, ips := []string{"localhost", "parley.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	c1, err := SelfSigned(dir, dns, ips, now)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, st.Mode())
	}
	// Second start: the same certificate, so a fingerprint a user accepted stays valid.
	c2, err := SelfSigned(dir, dns, ips, now.Add(time.Hour))
	if err != nil || Fingerprint(c1) != Fingerprint(c2) {
		t.Errorf("second start made a new certificate (%v)", err)
	}
	// A new address, or a certificate about to expire, makes a new one.
	c3, _ := SelfSigned(dir, dns, append(ips, net.IPv4(192, 0, 2, 7)), now)
	c4, _ := SelfSigned(dir, dns, append(ips, net.IPv4(192, 0, 2, 7)), now.Add(selfSignedLifetime-time.Hour))
	if Fingerprint(c3) == Fingerprint(c1) || Fingerprint(c4) == Fingerprint(c3) {
		t.Error("certificate not renewed for a new address or near its expiry")
	}
	if len(Fingerprint(c1)) != 32*3-1 {
		t.Errorf("fingerprint %q is not 32 colon-separated bytes", Fingerprint(c1))
	}

	// A client that trusts it reaches an https server on 127.0.0.1 by name and by address.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{c1}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(c1.Leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Errorf("https://%s: %v", host, err)
			continue
		}
		resp.Body.Close()
	}
}

func TestTLSConfigModes(t *testing.T) {
	dir := t.TempDir()
	if c, _, err := TLSConfig(Config{Mode: Off}, time.Now()); c != nil || err != nil {
		t.Errorf("off: %v %v", c, err)
	}
	if c, cert, err := TLSConfig(Config{Mode: Auto, DataDir: dir}, time.Now()); c == nil || cert == nil || err != nil {
		t.Errorf("auto: %v", err)
	}
	files := Config{Mode: Files, CertFile: filepath.Join(dir, "tls", "cert.pem"), KeyFile: filepath.Join(dir, "tls", "key.pem")}
	if c, _, err := TLSConfig(files, time.Now()); c == nil || err != nil {
		t.Errorf("files: %v", err)
	}
	if _, _, err := TLSConfig(Config{Mode: Files, CertFile: "/nonexistent", KeyFile: "/nonexistent"}, time.Now()); err == nil {
		t.Error("files: missing files accepted")
	}
	if _, _, err := TLSConfig(Config{Mode: ACME, DataDir: dir}, time.Now()); err == nil {
		t.Error("acme without a host accepted")
	}
	if c, _, err := TLSConfig(Config{Mode: ACME, DataDir: dir, ACMEHosts: []string{"calls.example.com"}}, time.Now()); c == nil || err != nil || c.GetCertificate == nil {
		t.Errorf("acme: %v", err)
	}
	if _, _, err := TLSConfig(Config{Mode: "bogus"}, time.Now()); err == nil {
		t.Error("unknown mode accepted")
	}
}
