// Package rtcapi builds the Pion API that every Parley peer uses, the native client, the SFU
// and the benchmark peers alike: the default codecs, the default interceptors (NACK
// generator and responder, RTCP reports, TWCC) with NACK repeats capped, no mDNS, and
// optionally loopback-only ICE.
package rtcapi

import (
	"fmt"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
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
}

// New returns an API for creating peer connections.
func New(o Options) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	for _, f := range o.Interceptors {
		ir.Add(f)
	}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, ir,
		webrtc.WithNackGeneratorOptions(nack.GeneratorMaxNacksPerPacket(MaxNACKsPerPacket))); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	// mDNS would open a multicast socket per peer connection for nothing these peers need.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}
