package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/parley-rtc/parley/certs"
	"github.com/parley-rtc/parley/jointoken"
	"github.com/parley-rtc/parley/protocol"
	"github.com/parley-rtc/parley/sfu"
	"github.com/parley-rtc/parley/signaling"
	"github.com/parley-rtc/parley/turnserver"
	"github.com/parley-rtc/parley/udpbatch"
	"github.com/parley-rtc/parley/web"
)

const serveUsage = `Usage: parley serve [flags]

Runs the signaling server, the web client and the built-in STUN/TURN server.

Every flag can also be set by an environment variable, PARLEY_ and the flag's name in
upper case with - as _ (PARLEY_TURN_SECRET for --turn-secret), or by a line "name value"
in the file given by --config (# starts a comment). A flag on the command line wins over
the environment, which wins over the file.

Flags:
`

// serveConfig is everything `parley serve` can be told.
type serveConfig struct {
	addr, logLevel, dataDir                    string
	tls, tlsCert, tlsKey, acmeHosts, acmeEmail string
	turnAddr, turnSecret, turnPublicIP         string
	turnAllowPeers, iceServers                 string
	turnTTL, shutdownTimeout                   time.Duration
	allowedOrigins, tokenSecret                string
	requireToken                               bool
	maxConnsPerIP, messageBurst                int
	maxGroupPeers, mediaPort                   int
	maxTracks, maxTrackKbps, maxTrackPPS       int
	sfuLoopback, pionSRTP                      bool
	cpuProfile                                 string
	messageRate                                float64
}

func serveFlags(fs *flag.FlagSet) *serveConfig {
	c := &serveConfig{}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`host:port` to listen on for HTTP(S) and WebSocket signaling")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "`dir`ectory for the self-signed certificate, ACME cache and generated secrets")
	fs.String("config", "", "read settings from this `file`")
	fs.StringVar(&c.tls, "tls", "off", "TLS `mode`: off (plain HTTP), auto (self-signed certificate, made on first start and kept in --data-dir), files (--tls-cert, --tls-key) or acme (--acme-host)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "certificate chain `file` (PEM) for --tls files; setting it implies --tls files")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key `file` (PEM) for --tls files")
	fs.StringVar(&c.acmeHosts, "acme-host", "", "comma-separated public host `names` to get an ACME certificate for (--tls acme; needs port 443)")
	fs.StringVar(&c.acmeEmail, "acme-email", "", "contact `address` given to the ACME CA")
	fs.StringVar(&c.turnAddr, "turn-addr", ":3478", "`host:port` of the built-in STUN/TURN server, UDP and TCP; off disables it")
	fs.StringVar(&c.turnSecret, "turn-secret", "", "TURN REST API shared `secret` (coturn's static-auth-secret); default: generated once and kept in --data-dir")
	fs.StringVar(&c.turnPublicIP, "turn-public-ip", "", "public `IP` the TURN server advertises for its relays (1:1 NAT); default: its listen or first interface address")
	fs.StringVar(&c.turnAllowPeers, "turn-allow-peers", "", "comma-separated `CIDRs` the TURN server may relay to although they are loopback, private, link-local or multicast")
	fs.DurationVar(&c.turnTTL, "turn-ttl", time.Hour, "lifetime of the TURN credentials handed to each client")
	fs.StringVar(&c.iceServers, "ice-servers", "", "comma-separated external STUN/TURN `URLs` to hand clients instead of the built-in server's; turn: URLs get REST API credentials from --turn-secret")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated host `patterns` (e.g. app.example.com, *.example.com) of other sites' pages allowed to use /ws; same origin is always allowed")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 20, "most open signaling connections from one IP address (-1: no limit)")
	fs.Float64Var(&c.messageRate, "message-rate", 20, "signaling messages per second a connection may send on average")
	fs.IntVar(&c.messageBurst, "message-burst", 60, "signaling messages a connection may send at once")
	fs.StringVar(&c.tokenSecret, "token-secret", "", "`secret` (at least 32 bytes) for signed join tokens (JWT HS256); see parley token")
	fs.BoolVar(&c.requireToken, "require-token", false, "admit joins only with a valid join token")
	fs.IntVar(&c.maxGroupPeers, "max-group-peers", 16, "most participants in a group session (media through the server's SFU)")
	fs.IntVar(&c.maxTracks, "max-tracks", sfu.DefaultMaxTracks, "most tracks one group member may publish through the SFU (-1: no limit)")
	fs.IntVar(&c.maxTrackKbps, "max-track-kbps", sfu.DefaultMaxTrackBitrate/1000, "most kbit/s the SFU forwards of one published track, simulcast layers together; more is dropped (-1: no limit)")
	fs.IntVar(&c.maxTrackPPS, "max-track-pps", sfu.DefaultMaxTrackPacketRate, "most RTP packets per second the SFU forwards of one published track; more are dropped (-1: no limit)")
	fs.IntVar(&c.mediaPort, "media-port", 0, "UDP `port` of the SFU's media, for every participant of every group call, on each interface address; 0: one the system picks at start")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to `file`, on shutdown")
	fs.BoolVar(&c.pionSRTP, "sfu-pion-srtp", false, "the SFU sends RTP and reads RTCP through Pion's SRTP sessions instead of its own paths (for comparison)")
	fs.BoolVar(&c.sfuLoopback, "sfu-loopback", false, "the SFU gathers only loopback ICE candidates (for tests with every client on this machine)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 5*time.Second, "on SIGTERM or SIGINT, how long connections get to close before they are cut")
	return c
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "parley")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "parley")
	}
	return "parley-data"
}

// parseConfig reads flags, environment and config file, in that order of precedence.
func parseConfig(fs *flag.FlagSet, args []string) error {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	return ff.Parse(fs, args,
		ff.WithEnvVarPrefix("PARLEY"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser))
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := serveFlags(fs)
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	tlsMode := certs.Mode(cfg.tls)
	if cfg.tlsCert != "" && tlsMode == certs.Off {
		tlsMode = certs.Files
	}
	tlsConf, cert, err := certs.TLSConfig(certs.Config{Mode: tlsMode, DataDir: cfg.dataDir,
		CertFile: cfg.tlsCert, KeyFile: cfg.tlsKey, ACMEHosts: splitList(cfg.acmeHosts), ACMEEmail: cfg.acmeEmail}, time.Now())
	if err != nil {
		return fmt.Errorf("--tls %s: %w", tlsMode, err)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	defer ln.Close()

	ice, closeTURN, err := iceServers(cfg, log)
	if err != nil {
		return err
	}
	defer closeTURN()

	var tokenSecret []byte
	if cfg.tokenSecret != "" {
		if len(cfg.tokenSecret) < jointoken.MinSecretLen {
			return fmt.Errorf("--token-secret is %d bytes, want at least %d", len(cfg.tokenSecret), jointoken.MinSecretLen)
		}
		tokenSecret = []byte(cfg.tokenSecret)
	} else if cfg.requireToken {
		return errors.New("--require-token needs --token-secret")
	}

	if cfg.maxGroupPeers < 3 {
		return fmt.Errorf("--max-group-peers %d: a group holds at least 3", cfg.maxGroupPeers)
	}
	for _, l := range []struct {
		flag string
		v    int
	}{{"max-tracks", cfg.maxTracks}, {"max-track-kbps", cfg.maxTrackKbps}, {"max-track-pps", cfg.maxTrackPPS}} {
		if l.v == 0 || l.v < -1 {
			return fmt.Errorf("--%s %d: want a positive number, or -1 for no limit", l.flag, l.v)
		}
	}
	if cfg.mediaPort < 0 || cfg.mediaPort > 65535 {
		return fmt.Errorf("--media-port %d: not a port", cfg.mediaPort)
	}
	if cfg.cpuProfile != "" {
		stop, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			return err
		}
		// Deferred before the SFU's Close, so it runs after it: the profile covers the
		// shutdown too.
		defer func() {
			if err := stop(); err != nil {
				log.Error("cpu profile", "err", err)
			}
		}()
	}
	// The SFU sends through the signaling server, which hands it its messages: sig is set
	// before any client can connect, so before the SFU can send.
	var sig *signaling.Server
	media, err := sfu.New(sfu.Config{Logger: log, LoopbackOnly: cfg.sfuLoopback, MediaPort: cfg.mediaPort,
		PionSRTP: cfg.pionSRTP, MaxTracks: cfg.maxTracks, MaxTrackBitrate: max(cfg.maxTrackKbps*1000, -1), MaxTrackPacketRate: cfg.maxTrackPPS,
		Send: func(to string, m protocol.Message) { sig.SendFromSFU(to, m) }})
	if err != nil {
		return fmt.Errorf("--media-port %d: %w", cfg.mediaPort, err)
	}
	defer media.Close()
	log.Info("SFU media", "udp", fmt.Sprint(media.MediaAddrs()))
	sig = signaling.New(signaling.Config{
		SFU:            media,
		MaxGroupPeers:  cfg.maxGroupPeers,
		Logger:         log,
		ICEServers:     ice,
		AllowedOrigins: splitList(cfg.allowedOrigins),
		MaxConnsPerIP:  cfg.maxConnsPerIP,
		MessageRate:    cfg.messageRate,
		MessageBurst:   cfg.messageBurst,
		TokenSecret:    tokenSecret,
		RequireToken:   cfg.requireToken,
	})
	// The browser client, embedded at build time, at / and /s/{id}; /ws and /healthz are
	// the signaling server's.
	sig.Handle("/", web.Handler(web.Dist()))
	sig.Handle("GET /healthz/sfu", sfuHealth(media))

	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	srv := &http.Server{Handler: sig, TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	// The first line on stdout says where the server is, for people and for scripts that
	// start it on port 0.
	fmt.Printf("parley: listening on %s://%s\n", scheme, ln.Addr())
	for _, u := range openURLs(scheme, ln.Addr()) {
		fmt.Printf("parley: open %s\n", u)
	}
	if cert != nil {
		fmt.Printf("parley: TLS certificate SHA-256 fingerprint %s\n", certs.Fingerprint(*cert))
	}
	log.Info("serving", "addr", ln.Addr().String(), "tls", string(tlsMode))

	errc := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := sig.Close(sctx); err != nil {
		log.Warn("signaling shutdown", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}

// iceServers starts the built-in TURN server, unless external servers are configured or
// it is off, and returns what each client's Welcome carries.
func iceServers(cfg *serveConfig, log *slog.Logger) (func(string) []protocol.ICEServer, func(), error) {
	noop := func() {}
	external := splitList(cfg.iceServers)
	if cfg.turnAddr == "off" && len(external) == 0 {
		return nil, noop, nil
	}
	secret := cfg.turnSecret
	if secret == "" {
		s, err := keptSecret(filepath.Join(cfg.dataDir, "turn-secret"))
		if err != nil {
			return nil, noop, fmt.Errorf("--turn-secret: %w", err)
		}
		secret = s
	}
	if len(external) > 0 {
		return func(userID string) []protocol.ICEServer {
			return externalICEServers(external, secret, userID, time.Now(), cfg.turnTTL)
		}, noop, nil
	}
	var allow []netip.Prefix
	for _, c := range splitList(cfg.turnAllowPeers) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, noop, fmt.Errorf("--turn-allow-peers: %w", err)
		}
		allow = append(allow, p)
	}
	tc := turnserver.Config{Addr: cfg.turnAddr, Secret: secret, AllowPeers: allow,
		CredentialTTL: cfg.turnTTL, Logger: log}
	if cfg.turnPublicIP != "" {
		if tc.PublicIP = net.ParseIP(cfg.turnPublicIP); tc.PublicIP == nil {
			return nil, noop, fmt.Errorf("--turn-public-ip %q is not an IP address", cfg.turnPublicIP)
		}
	}
	ts, err := turnserver.New(tc)
	if err != nil {
		return nil, noop, fmt.Errorf("TURN server on %s: %w (--turn-addr off disables it)", cfg.turnAddr, err)
	}
	return func(userID string) []protocol.ICEServer { return ts.ICEServers(userID, time.Now()) },
		func() { _ = ts.Close() }, nil
}

// externalICEServers hands out the configured URLs, with TURN REST API credentials for the
// turn: and turns: ones.
func externalICEServers(urls []string, secret, userID string, now time.Time, ttl time.Duration) []protocol.ICEServer {
	var stun, turn []string
	for _, u := range urls {
		if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
			turn = append(turn, u)
		} else {
			stun = append(stun, u)
		}
	}
	var out []protocol.ICEServer
	if len(stun) > 0 {
		out = append(out, protocol.ICEServer{URLs: stun})
	}
	if len(turn) > 0 {
		user, pass := turnserver.Credentials(secret, userID, now, ttl)
		out = append(out, protocol.ICEServer{URLs: turn, Username: user, Credential: pass})
	}
	return out
}

// keptSecret reads the secret in path, making and saving a random one the first time.
func keptSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	s := base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// openURLs lists the URLs at which a person can open the page: for a wildcard address, one
// per interface address.
func openURLs(scheme string, addr net.Addr) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return nil
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			out = append(out, fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(n.IP.String(), fmt.Sprint(tcp.Port))))
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sfuHealthReport is what GET /healthz/sfu reports: the SFU's totals since start.
type sfuHealthReport struct {
	Rooms           int            `json:"rooms"`
	Participants    int            `json:"participants"`
	Written         uint64         `json:"written"`         // RTP packets written to subscribers
	Retransmissions uint64         `json:"retransmissions"` // in answer to NACKs
	OverLimit       uint64         `json:"over_limit"`      // RTP packets over a published track's rate limit, dropped
	SRTPDirect      uint64         `json:"srtp_direct"`     // RTP packets sent through the SFU's own SRTP write path
	RTCPDirect      uint64         `json:"rtcp_direct"`     // SRTCP packets taken by its own SRTCP read path
	Media           udpbatch.Stats `json:"media"`           // the media port's datagrams and system calls
}

func sfuHealth(s *sfu.SFU) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		st := s.Stats()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sfuHealthReport{Rooms: st.Rooms, Participants: len(st.Participants),
			Written: st.Written, Retransmissions: st.Retransmissions, OverLimit: st.OverLimit,
			SRTPDirect: st.SRTPDirect, RTCPDirect: st.RTCPDirect, Media: st.Media})
	})
}

// startCPUProfile profiles the process into path until the returned stop.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
