// Package rtcapi builds the Pion API that every Parley peer uses, the native client, the SFU
// and the benchmark peers alike: the default codecs, the default interceptors (NACK
// generator and responder, RTCP reports, TWCC) with NACK repeats capped, AES-GCM SRTP
// preferred, no mDNS, and optionally loopback-only ICE or one UDP port for every peer
// connection. It also converts between Pion's ICE candidates and the protocol's.
package rtcapi

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// MaxNACKsPerPacket is how many times a peer asks for one lost packet. Pion's NACK
// generator does not see packets repaired over RTX (pion/interceptor#320) and would ask for
// each again every 100 ms while it is in its window.
const MaxNACKsPerPacket = 3

// Options adjusts the API. The zero value gathers ICE candidates on every interface.
type Options struct {
	// LoopbackOnly gathers only loopback candidates (UDP over IPv4), for peers that all run
	// on one machine: tests and benchmarks.
	LoopbackOnly bool
	// Interceptors are registered before the default ones, so they are the closest to the
	// network (the SFU counts NACKs and retransmissions with one).
	Interceptors []interceptor.Factory
	// UDPMux, if set, carries the host candidates of every peer connection of the API over
	// its sockets (one port), instead of a socket per peer connection. Its listen addresses
	// are used as they are: LoopbackOnly does not filter them.
	UDPMux ice.UDPMux
	// NoStats leaves out Pion's stats interceptor, which records every RTP and RTCP packet
	// for PeerConnection.GetStats alone; GetStats then has no RTP stream statistics. For
	// the SFU, which writes each forwarded packet once per subscriber and never asks.
	NoStats bool
	// NoNACKResponder leaves out Pion's NACK responder, which copies every packet sent into
	// a cache per stream to resend what the other side NACKs: for the SFU, which answers
	// NACKs from one cache per forwarded track instead. The NACK generator stays.
	NoNACKResponder bool
	// NoSenderReports leaves out Pion's sender reports (RFC 3550 §6.4.1): for the SFU,
	// which sends its own, counted where it counts every packet it sends.
	NoSenderReports bool
	// Logger, if set, receives Pion's logs, with the attribute pion=<scope>: its errors as
	// errors, its warnings, information and debug lines as debug, its trace at LevelTrace.
	// nil leaves Pion's own logger, which writes its errors to stderr.
	Logger *slog.Logger
	// Settings, if set, adjusts the setting engine last (the SFU's DTLS role and hooks).
	Settings func(*webrtc.SettingEngine)
}

// New returns an API for creating peer connections.
func New(o Options) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	ir.Add(serialReads{})
	for _, f := range o.Interceptors {
		ir.Add(f)
	}
	if err := registerInterceptors(m, ir, !o.NoStats, !o.NoNACKResponder, !o.NoSenderReports); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	// mDNS would open a multicast socket per peer connection for nothing these peers need.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// AES-128-GCM (RFC 7714) authenticates as it encrypts, in one pass with AES-NI, where
	// AES-CM with HMAC-SHA1 (RFC 3711) makes two; 128-bit keys take 10 AES rounds to 256's
	// 14. Browsers offer both; the DTLS handshake picks the first both sides have (RFC 5764
	// §4.1.2).
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	if o.UDPMux != nil {
		se.SetICEUDPMux(o.UDPMux)
	}
	if o.Logger != nil {
		se.LoggerFactory = logFactory{o.Logger}
	}
	if o.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	if o.Settings != nil {
		o.Settings(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// registerInterceptors does what webrtc.RegisterDefaultInterceptors does, in its order,
// with NACK repeats capped, and the NACK responder, sender reports and the stats
// interceptor optional.
func registerInterceptors(m *webrtc.MediaEngine, ir *interceptor.Registry, stats, responder, senderReports bool) error {
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(MaxNACKsPerPacket))
	if err != nil {
		return err
	}
	// What webrtc.ConfigureNackWithOptions does, the responder optional.
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	if responder {
		resp, err := nack.NewResponderInterceptor()
		if err != nil {
			return err
		}
		ir.Add(resp)
	}
	ir.Add(lazyStart{gen})
	// What webrtc.ConfigureRTCPReports does, the receiver reports started lazily.
	receiver, err := report.NewReceiverInterceptor()
	if err != nil {
		return err
	}
	ir.Add(lazyStart{receiver})
	if senderReports {
		sender, err := report.NewSenderInterceptor()
		if err != nil {
			return err
		}
		ir.Add(sender)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return err
	}
	if stats {
		if err := webrtc.ConfigureStatsInterceptor(ir); err != nil {
			return err
		}
	}
	// Its transport-wide feedback interceptor starts its ticker at the first packet
	// received already.
	return webrtc.ConfigureTWCCSender(m, ir)
}
