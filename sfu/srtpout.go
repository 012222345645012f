package sfu

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/parley-rtc/parley/udpbatch"
)

// The SFU's own SRTP write path. Pion writes each RTP packet to a subscriber through its
// SRTP session, its DTLS/SRTP mux, its ICE connection and the ICE UDP mux, with a lock or a
// channel at each step: at 200 subscribers half of the per-subscriber write was spent there,
// and a quarter of it encrypting and queueing the packet. srtpOut does those two itself: it
// encrypts with a pion/srtp context of its own and queues the packet on the media port's
// socket, for the remote address ICE selected. Packets the forwarder writes come to it
// straight (forward), past Pion's track and interceptors, which then cost as much as the
// rest of the write; the connection's outbound counts them as it counts those that come
// through the interceptors, under which srtpOut is registered (write).
//
// Pion v4.2.20 does not expose the SRTP keys (RFC 5764 §4.2) of a peer connection, so
// dtlsKeys derives them as pion/dtls does, from what two of its hooks show of the handshake:
// the master secret and the client random (its key log, kept in memory and never written
// anywhere) and the server random (the ServerHello the SFU sends). That needs the SFU to be
// the DTLS server, which it is when it answers (SetAnsweringDTLSRole) and when the other side
// answers its offer as browsers and Pion do (setup:active). A peer connection where it is not,
// or whose ICE pair is not on the media port, stays on Pion's path.

// srtpExporterLabel is the label of the DTLS-SRTP key exporter (RFC 5764 §4.2).
const srtpExporterLabel = "EXTRACTOR-dtls_srtp"

// dtlsKeys collects, during one peer connection's DTLS handshake, what the keying material
// exporter (RFC 5705 §4) needs. It is that connection's key log writer and ServerHello hook.
type dtlsKeys struct {
	mu           sync.Mutex
	master       []byte
	clientRandom []byte
	serverRandom []byte
	suite        dtls.CipherSuiteID
	profile      dtls.SRTPProtectionProfile
}

// Write takes pion/dtls's key log lines, "CLIENT_RANDOM <client random> <master secret>"
// in hex (NSS key log format).
func (k *dtlsKeys) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
			continue
		}
		cr, err1 := hex.DecodeString(string(f[1]))
		ms, err2 := hex.DecodeString(string(f[2]))
		if err1 != nil || err2 != nil {
			continue
		}
		k.mu.Lock()
		k.clientRandom, k.master = cr, ms
		k.mu.Unlock()
	}
	return len(p), nil
}

// serverHello notes the server random, cipher suite and SRTP protection profile of the
// ServerHello the SFU sends, which it returns unchanged.
func (k *dtlsKeys) serverHello(m handshake.MessageServerHello) handshake.Message {
	r := m.Random.MarshalFixed()
	k.mu.Lock()
	k.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		k.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) > 0 {
			k.profile = dtls.SRTPProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	k.mu.Unlock()
	return &m
}

// prfHash is the hash of the TLS 1.2 PRF (RFC 5246 §5) of a cipher suite: SHA-384 for the
// two SHA384 suites pion/dtls has, SHA-256 for the others.
func prfHash(id dtls.CipherSuiteID) func() hash.Hash {
	switch id {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	}
	return sha256.New
}

var errNotDTLSServer = errors.New("no ServerHello sent: the SFU is not this connection's DTLS server")

// ExportKeyingMaterial is RFC 5705's exporter without a context:
// PRF(master secret, label, client random + server random).
func (k *dtlsKeys) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(context) != 0 {
		return nil, errors.New("exporter context unsupported")
	}
	if k.serverRandom == nil {
		return nil, errNotDTLSServer
	}
	if k.master == nil {
		return nil, errors.New("no master secret logged")
	}
	seed := make([]byte, 0, len(label)+len(k.clientRandom)+len(k.serverRandom))
	seed = append(append(append(seed, label...), k.clientRandom...), k.serverRandom...)
	return prf.PHash(k.master, seed, length, prfHash(k.suite))
}

// contexts makes the SRTP contexts of what the SFU, the DTLS server, sends (out) and of
// the SRTCP the other side sends it (in, with SRTCP replay protection, RFC 3711 §3.3.2).
func (k *dtlsKeys) contexts() (out, in *srtp.Context, err error) {
	k.mu.Lock()
	profile := srtp.ProtectionProfile(k.profile)
	k.mu.Unlock()
	if profile == 0 {
		return nil, nil, errNotDTLSServer
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(k, false); err != nil {
		return nil, nil, err
	}
	out, err = srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, profile)
	if err != nil {
		return nil, nil, err
	}
	in, err = srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, profile, srtp.SRTCPReplayProtection(rtcpReplayWindow))
	if err != nil {
		return nil, nil, err
	}
	// The contexts have what they need: the master secret goes (a new handshake logs its
	// own).
	k.mu.Lock()
	clear(k.master)
	k.master = nil
	k.mu.Unlock()
	return out, in, nil
}

// rtcpReplayWindow is how many SRTCP indexes back a packet may be and still be taken, if
// not seen before: Pion's SRTCP session uses the same.
const rtcpReplayWindow = 64

// srtpOut is one peer connection's SRTP write path, and the interceptor factory that puts it
// under the others; and its SRTCP read path (rtcpin.go). Until on (activate), packets go
// down Pion's paths.
type srtpOut struct {
	keys      dtlsKeys
	media     *mediaMux
	ob        *outbound      // counts what the forwarder writes here (forward)
	count     *atomic.Uint64 // the SFU's total of packets sent this way
	forwarded *atomic.Uint64 // of which those the forwarder wrote here
	rtcp      rtcpIn

	on     atomic.Bool
	mu     sync.Mutex // serialises writes, which come from every forwarder of the subscriber
	ctx    *srtp.Context
	conn   *udpbatch.Conn // the socket of the ICE pair's local address
	remote netip.AddrPort // the ICE pair's remote address
	local  netip.Addr
	tapped icePair // the pair whose RTCP the media port hands to rtcp, if on
	ufrag  string  // the connection's local ICE ufrag, as of activate
	closed bool
	hdr    rtp.Header
}

func newSRTPOut(media *mediaMux, ob *outbound, count, forwarded, rtcpCount *atomic.Uint64) *srtpOut {
	return &srtpOut{media: media, ob: ob, count: count, forwarded: forwarded, rtcp: rtcpIn{count: rtcpCount}}
}

// settings makes the SFU this connection's DTLS server when it answers, and hands
// dtlsKeys the handshake.
func (o *srtpOut) settings(se *webrtc.SettingEngine) {
	_ = se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer) // a valid role: no error
	se.SetDTLSKeyLogWriter(&o.keys)
	se.SetDTLSServerHelloMessageHook(o.keys.serverHello)
}

// watch follows the peer connection's selected ICE pair. Call it before negotiating.
func (o *srtpOut) watch(pc *webrtc.PeerConnection) {
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		o.setPair(pair)
	})
}

// setPair points the write path at an ICE candidate pair. The SFU gathers only host
// candidates on the media port, so a new pair (an ICE restart) keeps the path on. One whose
// local address is not a socket of the media port, or none, turns it off, and Pion's path
// takes over; its SRTP context then starts each stream's rollover counter (RFC 3711 §3.3.1)
// afresh, which the other side follows only within a stream's first 65,536 packets.
func (o *srtpOut) setPair(pair *webrtc.ICECandidatePair) {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer o.tap()
	o.conn = nil
	if pair == nil || pair.Local == nil || pair.Remote == nil {
		o.on.Store(false)
		return
	}
	local, err1 := netip.ParseAddr(pair.Local.Address)
	remote, err2 := netip.ParseAddr(pair.Remote.Address)
	if err1 != nil || err2 != nil || int(pair.Local.Port) != o.media.localPort() {
		o.on.Store(false)
		return
	}
	o.local, o.remote = local.Unmap(), netip.AddrPortFrom(remote.Unmap(), pair.Remote.Port)
	o.conn = o.media.conn(o.local)
	o.on.Store(o.conn != nil && o.ctx != nil && !o.closed)
}

// tap has the media port hand this connection's SRTCP read path the RTCP of its ICE pair,
// and of the addresses its STUN requests come from, while the SRTP path is on, and none
// otherwise; o.mu is held.
func (o *srtpOut) tap() {
	var want icePair
	ufrag := ""
	if o.on.Load() {
		want, ufrag = icePair{o.local, o.remote}, o.ufrag
	}
	if want == o.tapped {
		return
	}
	o.media.setRTCP(o, want, ufrag)
	o.tapped = want
}

// activate turns the write path on once the peer connection is connected, which its DTLS
// handshake then is. It reports why it cannot; the connection then stays on Pion's path.
func (o *srtpOut) activate(pc *webrtc.PeerConnection) error {
	ctx, in, err := o.keys.contexts()
	if err != nil {
		return err
	}
	o.rtcp.setContext(in)
	var ufrag string
	if params, err := pc.SCTP().Transport().ICETransport().GetLocalParameters(); err == nil {
		ufrag = params.UsernameFragment
	}
	o.mu.Lock()
	o.ctx = ctx
	o.ufrag = ufrag
	hasPair := o.conn != nil
	o.mu.Unlock()
	if !hasPair {
		pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil {
			return err
		}
		o.setPair(pair)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == nil {
		return fmt.Errorf("the selected ICE pair's local address %v is not on the media port", o.local)
	}
	o.on.Store(!o.closed)
	o.tap()
	return nil
}

// close turns the write path off for good: the peer connection is closing.
func (o *srtpOut) close() {
	o.mu.Lock()
	o.closed = true
	o.on.Store(false)
	o.tap()
	o.mu.Unlock()
}

// active reports whether packets go this way.
func (o *srtpOut) active() bool { return o.on.Load() }

// write encrypts one RTP packet and queues it, or hands it to Pion's path (next) while off.
func (o *srtpOut) write(h *rtp.Header, payload []byte, a interceptor.Attributes, next interceptor.RTPWriter) (int, error) {
	if !o.on.Load() {
		return next.Write(h, payload, a)
	}
	o.mu.Lock()
	if !o.on.Load() { // turned off meanwhile
		o.mu.Unlock()
		return next.Write(h, payload, a)
	}
	defer o.mu.Unlock()
	return o.seal(h, payload)
}

// seal encrypts one RTP packet and queues it; o.mu is held. The packet is marshalled into
// a datagram of the socket's pool and encrypted there, in place: each byte is written once,
// to a buffer that is then in cache for the encryption.
func (o *srtpOut) seal(h *rtp.Header, payload []byte) (int, error) {
	p := rtp.Packet{Header: *h, Payload: payload}
	size := p.MarshalSize()
	d := o.conn.Datagram()
	d.Buf = slices.Grow(d.Buf, size+maxAuthTag)[:size]
	n, err := p.MarshalTo(d.Buf)
	if err != nil {
		return 0, err // d is left to the garbage collector
	}
	return n, o.send(d, n)
}

// send encrypts the RTP packet in d.Buf[:n] in place and queues it; o.mu is held.
func (o *srtpOut) send(d *udpbatch.Datagram, n int) error {
	var err error
	if d.Buf, err = o.ctx.EncryptRTP(d.Buf[:n], d.Buf[:n], &o.hdr); err != nil {
		return err // d is left to the garbage collector
	}
	if err := o.conn.Send(d, o.remote); err != nil {
		return err
	}
	o.count.Add(1)
	return nil
}

// maxAuthTag is the longest SRTP authentication tag of the profiles Pion offers: AES-GCM's
// 16 bytes (RFC 7714 §7); HMAC-SHA1-80's is 10 (RFC 3711 §5.2).
const maxAuthTag = 16

// forward writes a forwarded packet to the subscriber's stream b past Pion's track and
// interceptors, which cost as much as the rest of the write: it gives the packet the
// stream's SSRC and payload type as Pion's track would, has the connection's outbound
// count it and number it (the transport-wide sequence number), and seals it. It reports
// false, having done nothing, while this path is off or before the stream is bound: the
// caller then writes through the track.
func (o *srtpOut) forward(b *binding, p *rtp.Packet, now time.Time) bool {
	if !o.on.Load() {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.on.Load() {
		return false
	}
	st := b.stream
	if st == nil {
		if st = o.ob.stream(b.ssrc); st == nil {
			return false
		}
		b.stream = st
	}
	if st.twcc > maxOneByteID {
		return false // not what Pion negotiates; its track writes it
	}
	size := rtpHeaderSize + 4*len(p.CSRC)
	if st.twcc != 0 {
		size += twccExtSize
	}
	pad := 0
	if p.Padding {
		if pad = int(p.PaddingSize); pad == 0 {
			return true // invalid (RFC 3550 §5.1), as Pion's track would find it
		}
	}
	seq := o.ob.stamp(st, &rtp.Header{SSRC: b.ssrc, SequenceNumber: p.SequenceNumber, Timestamp: p.Timestamp},
		len(p.Payload), size+len(p.Payload), now)
	d := o.conn.Datagram()
	n := marshalForwarded(d, p, b.ssrc, b.pt, st.twcc, seq, size, pad)
	// An error means the connection is closing, which leave handles.
	if o.send(d, n) == nil {
		o.forwarded.Add(1)
	}
	return true
}

// Sizes of what forward writes: the fixed RTP header (RFC 3550 §5.1), and the header
// extension block with one element, the transport-wide sequence number, in RFC 8285's
// one-byte form (§4.2): 0xBEDE, a length of one word, the element's ID and length, its
// two bytes and a byte of padding.
const (
	rtpHeaderSize = 12
	twccExtSize   = 8
	maxOneByteID  = 14
)

// marshalForwarded writes into d the packet p as forward sends it: p's header with ssrc and
// pt, its only extension the transport-wide sequence number seq when twcc (the
// extension's ID) is not 0, then its payload and pad bytes of padding. size is the header's
// size. It writes what rtp.Packet.MarshalTo writes of that packet (TestMarshalForwarded checks),
// without building its header, and returns the length.
func marshalForwarded(d *udpbatch.Datagram, p *rtp.Packet, ssrc uint32, pt, twcc uint8, seq uint16, size, pad int) int {
	n := size + len(p.Payload) + pad
	d.Buf = slices.Grow(d.Buf[:0], n+maxAuthTag)[:n]
	buf := d.Buf
	buf[0] = 2<<6 | byte(len(p.CSRC)) // version 2, CSRC count
	if p.Padding {
		buf[0] |= 1 << 5
	}
	if twcc != 0 {
		buf[0] |= 1 << 4
	}
	buf[1] = pt
	if p.Marker {
		buf[1] |= 1 << 7
	}
	binary.BigEndian.PutUint16(buf[2:], p.SequenceNumber)
	binary.BigEndian.PutUint32(buf[4:], p.Timestamp)
	binary.BigEndian.PutUint32(buf[8:], ssrc)
	at := rtpHeaderSize
	for _, c := range p.CSRC {
		binary.BigEndian.PutUint32(buf[at:], c)
		at += 4
	}
	if twcc != 0 {
		binary.BigEndian.PutUint16(buf[at:], rtp.ExtensionProfileOneByte)
		binary.BigEndian.PutUint16(buf[at+2:], 1) // words
		buf[at+4] = twcc<<4 | (2 - 1)             // ID, length less one
		binary.BigEndian.PutUint16(buf[at+5:], seq)
		buf[at+7] = 0
		at += twccExtSize
	}
	at += copy(buf[at:], p.Payload)
	if pad > 0 {
		clear(buf[at : n-1])
		buf[n-1] = byte(pad)
	}
	return n
}

// localTrack is a forwarded track as one subscriber receives it: Pion's
// TrackLocalStaticRTP, which negotiates and binds it, and what the SFU's own write path
// (srtpOut.forward) needs of its binding to the subscriber's RTP sender.
type localTrack struct {
	*webrtc.TrackLocalStaticRTP
	mu    sync.Mutex
	binds int
	bound atomic.Pointer[binding] // nil unless bound once
}

// binding is a local track's binding to a subscriber's RTP sender.
type binding struct {
	ssrc   uint32
	pt     uint8
	stream *sendStream // the connection's outbound's, found at the first write; srtpOut.mu guards it
}

func newLocalTrack(codec webrtc.RTPCodecCapability, id, streamID string) (*localTrack, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(codec, id, streamID)
	if err != nil {
		return nil, err
	}
	return &localTrack{TrackLocalStaticRTP: t}, nil
}

// Bind is Pion's, noting the binding's SSRC and payload type. A track bound twice at once
// (which the SFU never does) goes through Pion's track to both.
func (t *localTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, err := t.TrackLocalStaticRTP.Bind(ctx)
	if err != nil {
		return c, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.binds++
	if t.binds == 1 {
		t.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType)})
	} else {
		t.bound.Store(nil)
	}
	return c, nil
}

func (t *localTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bound.Store(nil)
	err := t.TrackLocalStaticRTP.Unbind(ctx)
	if err == nil {
		t.binds--
	}
	return err
}

// NewInterceptor makes the interceptor of the peer connection this srtpOut belongs to:
// registered first, it is the last before the network.
func (o *srtpOut) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &srtpOutInterceptor{o: o}, nil
}

type srtpOutInterceptor struct {
	interceptor.NoOp
	o *srtpOut
}

func (i *srtpOutInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		return i.o.write(h, payload, a, w)
	})
}
