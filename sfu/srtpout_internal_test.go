package sfu

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// TestDTLSKeys: the SRTP keying material dtlsKeys derives from the key log and the
// ServerHello is what pion/dtls's own exporter gives, for a suite with SHA-256 and one with
// SHA-384 as its PRF hash and with extended master secret on and off; and a packet
// encrypted with the out context decrypts with the client's keys from pion/dtls.
func TestDTLSKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		suite dtls.CipherSuiteID
		ems   dtls.ExtendedMasterSecretType
	}{
		{"AES128-GCM-SHA256", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.RequireExtendedMasterSecret},
		{"AES256-GCM-SHA384", dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.RequireExtendedMasterSecret},
		{"no-EMS", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.DisableExtendedMasterSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys dtlsKeys
			server, client := dtlsHandshake(t, tc.suite, tc.ems, &keys)
			const n = 2 * (16 + 12) // SRTP_AEAD_AES_128_GCM: two keys and two salts
			want, err := server.ExportKeyingMaterial(srtpExporterLabel, nil, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := keys.ExportKeyingMaterial(srtpExporterLabel, nil, n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("keying material\n got %x\nwant %x", got, want)
			}

			out, fromClient, err := keys.contexts()
			if err != nil {
				t.Fatal(err)
			}
			cfg := srtp.Config{Profile: srtp.ProtectionProfileAeadAes128Gcm}
			if err := cfg.ExtractSessionKeysFromDTLS(client, true); err != nil {
				t.Fatal(err)
			}
			in, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
			if err != nil {
				t.Fatal(err)
			}
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, SSRC: 42}, Payload: []byte("a forwarded packet")}
			plain, _ := pkt.Marshal()
			enc, err := out.EncryptRTP(nil, plain, nil)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := in.DecryptRTP(nil, enc, nil)
			if err != nil {
				t.Fatalf("the client cannot decrypt the SFU's packet: %v", err)
			}
			if !bytes.Equal(dec, plain) {
				t.Fatalf("decrypted %x, want %x", dec, plain)
			}

			// And the other way: the SFU decrypts the client's SRTCP.
			toSFU, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile)
			if err != nil {
				t.Fatal(err)
			}
			pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 42}).Marshal()
			enc, err = toSFU.EncryptRTCP(nil, pli, nil)
			if err != nil {
				t.Fatal(err)
			}
			dec, err = fromClient.DecryptRTCP(nil, enc, nil)
			if err != nil {
				t.Fatalf("the SFU cannot decrypt the client's RTCP: %v", err)
			}
			if !bytes.Equal(dec, pli) {
				t.Fatalf("decrypted %x, want %x", dec, pli)
			}
			if _, err := fromClient.DecryptRTCP(nil, enc, nil); err == nil {
				t.Fatal("the same SRTCP packet decrypted twice: no replay protection")
			}
		})
	}
}

// TestDTLSKeysClient: where the SFU is the DTLS client it sends no ServerHello, and
// contexts says so rather than derive wrong keys.
func TestDTLSKeysClient(t *testing.T) {
	var keys dtlsKeys
	if _, _, err := keys.contexts(); err == nil {
		t.Fatal("contexts without a ServerHello: no error")
	}
	_, _ = keys.Write([]byte("CLIENT_RANDOM 00 11\n"))
	if _, err := keys.ExportKeyingMaterial(srtpExporterLabel, nil, 56); err == nil {
		t.Fatal("ExportKeyingMaterial without a ServerHello: no error")
	}
}

// dtlsHandshake runs a DTLS-SRTP handshake over loopback UDP, the server's hooks going to keys,
// and returns both sides' states.
func dtlsHandshake(t *testing.T, suite dtls.CipherSuiteID, ems dtls.ExtendedMasterSecretType, keys *dtlsKeys) (server, client *dtls.State) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	base := dtls.Config{Certificates: []tls.Certificate{cert}, CipherSuites: []dtls.CipherSuiteID{suite},
		SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM},
		ExtendedMasterSecret:   ems, InsecureSkipVerify: true, ClientAuth: dtls.RequireAnyClientCert}
	scfg, ccfg := base, base
	scfg.KeyLogWriter, scfg.ServerHelloMessageHook = keys, keys.serverHello
	s, err := dtls.Server(sc, cc.LocalAddr(), &scfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dtls.Client(cc, sc.LocalAddr(), &ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 1)
	go func() { errs <- s.HandshakeContext(ctx) }()
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	ss, ok1 := s.ConnectionState()
	cs, ok2 := c.ConnectionState()
	if !ok1 || !ok2 {
		t.Fatal("no connection state")
	}
	return &ss, &cs
}
