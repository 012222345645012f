package sfu

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/parley-rtc/parley/udpbatch"
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

// TestSeal: seal marshals each packet into a datagram of the media port's pool and
// encrypts it there, in place, with either profile Pion negotiates; what arrives decrypts
// to the packet, padding and header extensions included, one longer than the pooled
// buffer too.
func TestSeal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile srtp.ProtectionProfile
		salt    int
	}{
		{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 12},
		{"AES128_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, tc.salt)
			out, err := srtp.CreateContext(key, salt, tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			in, err := srtp.CreateContext(key, salt, tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer recv.Close()
			sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := udpbatch.New(sock, udpbatch.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var count atomic.Uint64
			o := &srtpOut{ctx: out, conn: conn, remote: recv.LocalAddr().(*net.UDPAddr).AddrPort(), count: &count}

			withExt := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 3, Timestamp: 90, SSRC: 42}
			if err := withExt.SetExtension(3, []byte{1, 2}); err != nil {
				t.Fatal(err)
			}
			packets := []rtp.Packet{
				{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 90, SSRC: 42, Marker: true},
					Payload: []byte("a small packet")},
				{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 2, Timestamp: 90, SSRC: 42, Padding: true,
					PaddingSize: 4}, Payload: bytes.Repeat([]byte{5}, 1100)},
				{Header: withExt, Payload: bytes.Repeat([]byte{6}, 1200)},
				// 1,500 bytes marshalled: with its tag, longer than a pooled datagram.
				{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 4, Timestamp: 180, SSRC: 43},
					Payload: bytes.Repeat([]byte{8}, 1500-12)},
			}
			buf := make([]byte, 4096)
			_ = recv.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i, p := range packets {
				want, err := p.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if n, err := o.seal(&p.Header, p.Payload); err != nil || n != len(want) {
					t.Fatalf("packet %d: seal = %d, %v; want %d bytes", i, n, err, len(want))
				}
				n, err := recv.Read(buf)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				got, err := in.DecryptRTP(nil, buf[:n], nil)
				if err != nil {
					t.Fatalf("packet %d (%d bytes) does not decrypt: %v", i, n, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("packet %d decrypts to %d bytes, want the %d marshalled", i, len(got), len(want))
				}
			}
			if count.Load() != uint64(len(packets)) {
				t.Errorf("counted %d packets sent, want %d", count.Load(), len(packets))
			}
		})
	}
}

// TestMarshalForwarded: what forward writes of a packet is what rtp.Packet.Marshal writes
// of the header forward used to build (the stream's SSRC and payload type, the
// publisher's extensions dropped, the transport-wide sequence number set), for packets
// with and without CSRCs, marker, padding and that extension, written over a datagram
// that held a longer one.
func TestMarshalForwarded(t *testing.T) {
	d := &udpbatch.Datagram{Buf: bytes.Repeat([]byte{0xAA}, 1400)}
	for _, csrc := range [][]uint32{nil, {7}, {1, 2, 3}} {
		for _, twcc := range []uint8{0, 1, 5, maxOneByteID} {
			for _, pad := range []byte{0, 1, 4} {
				for _, marker := range []bool{false, true} {
					for _, payload := range [][]byte{{}, {1}, bytes.Repeat([]byte{0x42}, 1100)} {
						in := rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker, PayloadType: 111,
							SequenceNumber: 65535, Timestamp: 0xFEDCBA98, SSRC: 0x11111111, CSRC: csrc,
							Padding: pad > 0, PaddingSize: pad}, Payload: payload}
						// The publisher's own extensions, which forward drops.
						if err := in.Header.SetExtension(3, []byte{9, 9, 9}); err != nil {
							t.Fatal(err)
						}
						const ssrc, pt, seq = 0xCAFEF00D, 96, 0x1234
						want := in
						want.Header.SSRC, want.Header.PayloadType = ssrc, pt
						want.Header.Extension, want.Header.ExtensionProfile, want.Header.Extensions = false, 0, nil
						size := rtpHeaderSize + 4*len(csrc)
						if twcc != 0 {
							if err := want.Header.SetExtension(twcc, []byte{seq >> 8, seq & 0xFF}); err != nil {
								t.Fatal(err)
							}
							size += twccExtSize
						}
						if size != want.Header.MarshalSize() {
							t.Fatalf("header size %d, rtp says %d", size, want.Header.MarshalSize())
						}
						wantBuf, err := want.Marshal()
						if err != nil {
							t.Fatal(err)
						}
						n := marshalForwarded(d, &in, ssrc, pt, twcc, seq, size, int(pad))
						got := d.Buf[:n]
						if pad > 1 { // padding bytes before the count are any value (RFC 3550 §5.1); ours are 0
							if !bytes.Equal(got[n-int(pad):n-1], make([]byte, pad-1)) {
								t.Errorf("padding %x, want zeros", got[n-int(pad):n-1])
							}
							copy(wantBuf[len(wantBuf)-int(pad):], got[n-int(pad):n-1])
						}
						if !bytes.Equal(got, wantBuf) {
							t.Errorf("csrc %v twcc %d pad %d marker %v payload %d:\n got %x\nwant %x",
								csrc, twcc, pad, marker, len(payload), got, wantBuf)
						}
						var back rtp.Packet
						if err := back.Unmarshal(got); err != nil {
							t.Fatalf("unmarshal: %v", err)
						}
						if twcc != 0 && binary.BigEndian.Uint16(back.GetExtension(twcc)) != seq {
							t.Errorf("transport-wide sequence number %x, want %x", back.GetExtension(twcc), seq)
						}
					}
				}
			}
		}
	}
}
