//go:build linux

package udpbatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux the socket's system calls are made here, with unix.RawSyscall6 in the callbacks
// of its syscall.RawConn: the read or write itself, and the wait for the socket to be ready
// in Go's network poller as usual. A raw system call does not tell the Go scheduler it is
// in one (no entersyscall): the goroutine keeps its P, which is what these short,
// non-blocking calls need. The ordinary entry is what costs. Each call through it wakes the
// runtime's monitor thread if it was asleep (the process idle between two packets), which
// then polls every 20 µs for the next millisecond or more, and may hand the P of a long
// sendmmsg(2) to another thread; at 200 subscribers that monitor took a tenth of the SFU's
// CPU. The cost of a raw call: a stop-the-world pause waits for it, at most one batch.

// mmsghdr is struct mmsghdr of sendmmsg(2); Go pads it to the alignment of Msghdr, as C
// does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockaddr holds a struct sockaddr_in6, or a sockaddr_in, which is shorter and aligned
// alike.
type sockaddr = unix.RawSockaddrInet6

// sender sends batches with sendmmsg(2). It is the writer goroutine's.
type sender struct {
	rc    syscall.RawConn
	twin  int  // the send-only socket's descriptor (listen), or -1
	full  bool // the last send found the send-only socket's buffer full
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	addrs []sockaddr
	ctrl  []byte // each message's control message, a UDP_SEGMENT (segmentSpace bytes)
	k     int    // messages in this call
	n     int    // sent, or -1
	errno syscall.Errno
	fn    func(fd uintptr) bool // s.call, bound once: a read or write costs no allocation
	zones zones
}

// segmentSpace is the room of one UDP_SEGMENT control message: its header and a uint16,
// the size of the segments.
var segmentSpace = unix.CmsgSpace(2)

// newSender sends on c, or from twin, a send-only socket (listen), unless it is -1.
func newSender(c *net.UDPConn, size int, twin int) (*sender, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &sender{rc: rc, twin: twin, hdrs: make([]mmsghdr, size), iovs: make([]unix.Iovec, size), addrs: make([]sockaddr, size),
		ctrl: make([]byte, size*segmentSpace)}
	for i := range s.hdrs {
		s.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&s.addrs[i]))
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&s.ctrl[i*segmentSpace]))
		cm.Level = unix.SOL_UDP
		cm.Type = unix.UDP_SEGMENT
		cm.SetLen(unix.CmsgLen(2))
	}
	s.fn = s.call
	return s, nil
}

// gso reports whether the kernel takes segmented messages (UDP_SEGMENT): a kernel that
// does not know the option refuses to read it.
func (s *sender) gso() bool {
	var err error
	if cerr := s.rc.Control(func(fd uintptr) {
		_, err = unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
	}); cerr != nil {
		return false
	}
	return err == nil
}

// gsoRefused reports whether a segmented message's error says the socket takes no segmented
// messages at all: EIO from a route through IPsec or (older kernels) a device without
// checksum offload, EINVAL from a socket that sends no UDP checksums (SO_NO_CHECK), which
// segmentation needs, EOPNOTSUPP or ENOPROTOOPT from a kernel without it.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.ENOPROTOOPT)
}

// max is the most datagrams one send takes.
func (s *sender) max() int { return len(s.hdrs) }

// send sends ds (at most s.max()) with one system call, or more if the socket's buffer
// fills: one message each, or, with segs, segs[i] datagrams of one address in message i.
// It returns how many messages were sent; an error is that of the message after them.
func (s *sender) send(ds []*Datagram, segs []int) (int, error) {
	for i, d := range ds {
		s.iovs[i].Base = unsafe.SliceData(d.Buf)
		s.iovs[i].SetLen(len(d.Buf))
	}
	k := len(ds)
	if segs != nil {
		k = len(segs)
	}
	at := 0
	for m := range k {
		n := 1
		if segs != nil {
			n = segs[m]
		}
		h := &s.hdrs[m].hdr
		h.Iov = &s.iovs[at]
		h.SetIovlen(n)
		h.Namelen = putSockaddr(&s.addrs[m], ds[at].to, &s.zones)
		if n > 1 {
			c := s.ctrl[m*segmentSpace : (m+1)*segmentSpace]
			binary.NativeEndian.PutUint16(c[unix.CmsgLen(0):], uint16(len(ds[at].Buf)))
			h.Control = &c[0]
			h.SetControllen(segmentSpace)
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		at += n
	}
	s.k = k
	var err error
	s.full = false
	if s.twin < 0 || !s.call(uintptr(s.twin)) {
		// No send-only socket, or its buffer is full: the socket itself, waiting in the
		// poller until it is writable if need be.
		s.full = s.twin >= 0
		err = s.rc.Write(s.fn)
	}
	n := s.n
	for i := range ds {
		s.iovs[i].Base = nil
	}
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(ds[0].to), Err: s.errno}
	}
	return n, nil
}

func (s *sender) call(fd uintptr) bool {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.k), 0, 0, 0)
		switch errno {
		case 0:
			s.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // the socket's buffer is full: wait until it is writable
		}
		s.n, s.errno = -1, errno
		return true
	}
}

// close closes the send-only socket, once the writer has ended.
func (s *sender) close() {
	closeTwin(s.twin)
	s.twin = -1
}

// closeTwin closes twin, a send-only socket (listen), or nothing if it is -1.
func closeTwin(twin int) {
	if twin >= 0 {
		unix.Close(twin)
	}
}

// A socket that Go's network poller watches pays for it on every datagram it sends: when
// the kernel frees a sent datagram's buffer (on loopback, at once; on a network card, when
// the card has sent it), it wakes the socket's waiters as writable, and the poller, which
// registers every socket for writability too (edge-triggered), queues the event and wakes a
// thread blocked in epoll_wait(2). That thread finds no writer waiting and sleeps again: a
// context switch there and back for nearly every batch the SFU sends. At 200 subscribers
// the wake-up itself, charged to sendmmsg(2), took about 3 % of the server's CPU, and its
// threads came out of epoll_wait(2) 2,300 times a second; 1,360 without it.
//
// So the Conn sends from a second socket on the same address that the poller does not
// watch, and reads from the first. They form a SO_REUSEPORT group (socket(7)) whose
// classic BPF program (SO_ATTACH_REUSEPORT_CBPF, Linux 4.5) gives every arriving datagram
// to the group's first socket, the one read. The program is attached before the first
// socket is bound, which makes that socket start a group of its own: its bind fails like
// any other if the port is taken, even by another SO_REUSEPORT socket, so a second server
// on the port is refused as before. The second socket, non-blocking, is written with raw
// system calls; if its buffer is full, the batch goes on the first socket as without it.

// steerToFirst is the group's program: return 0, the index of the group's first socket.
var steerToFirst = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// listen opens the socket on laddr and, where the kernel allows it, its send-only twin.
func listen(laddr netip.AddrPort, o Options) (*net.UDPConn, int, error) {
	grouped := false
	var lc net.ListenConfig
	if !o.NoSendOnly {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { grouped = startGroup(int(fd)) })
		}
	}
	pc, err := lc.ListenPacket(context.Background(), "udp", laddr.String())
	if err != nil {
		return nil, -1, err
	}
	c := pc.(*net.UDPConn)
	if o.ReadBuffer > 0 {
		_ = c.SetReadBuffer(o.ReadBuffer)
	}
	if o.WriteBuffer > 0 {
		_ = c.SetWriteBuffer(o.WriteBuffer)
	}
	twin := -1
	if grouped {
		twin, err = openTwin(c, o.WriteBuffer)
		if err != nil {
			twin = -1 // the socket alone sends, as New's
		}
	}
	return c, twin, nil
}

// startGroup makes fd, not yet bound, the first socket of a SO_REUSEPORT group with the
// steerToFirst program; it reports whether that worked, leaving fd as it was if not.
func startGroup(fd int) bool {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) != nil {
		return false
	}
	prog := unix.SockFprog{Len: uint16(len(steerToFirst)), Filter: &steerToFirst[0]}
	if unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &prog) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 0)
		return false
	}
	return true
}

// openTwin opens a non-blocking socket bound to c's address, in c's group.
func openTwin(c *net.UDPConn, sndbuf int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var sa unix.Sockaddr
	var domain, v6only int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if sa, serr = unix.Getsockname(int(fd)); serr != nil {
			return
		}
		if domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			return
		}
		if domain == unix.AF_INET6 {
			v6only, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		}
	}); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, serr
	}
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	err = func() error {
		if domain == unix.AF_INET6 {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
				return err
			}
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return err
		}
		if sndbuf > 0 {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
		}
		return unix.Bind(fd, sa)
	}()
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("send-only socket: %w", err)
	}
	return fd, nil
}

// putSockaddr writes a as a sockaddr_in (IPv4, or IPv4-mapped IPv6) or sockaddr_in6 and
// returns its length.
func putSockaddr(sa *sockaddr, a netip.AddrPort, z *zones) uint32 {
	ip := a.Addr()
	if ip.Is4() || ip.Is4In6() {
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p.Port))[:], a.Port())
		p.Addr = ip.Unmap().As4()
		p.Zero = [8]uint8{}
		return unix.SizeofSockaddrInet4
	}
	p := sa
	p.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p.Port))[:], a.Port())
	p.Flowinfo = 0
	p.Addr = ip.As16()
	p.Scope_id = z.index(ip.Zone())
	return unix.SizeofSockaddrInet6
}

// zones maps IPv6 zones (RFC 4007 §11) to interface indexes and back, remembering what it
// looked up: a lookup lists the interfaces, too slow for every packet. Its owner serialises
// its use. The SFU's media port binds no link-local address, so it rarely sees one.
type zones struct {
	byName  map[string]uint32
	byIndex map[uint32]string
}

// index is the interface index of zone: its number, or its interface's; 0 for none.
func (z *zones) index(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if i, ok := z.byName[zone]; ok {
		return i
	}
	var i uint32
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		i = uint32(n)
	} else if ifi, err := net.InterfaceByName(zone); err == nil {
		i = uint32(ifi.Index)
	}
	if z.byName == nil {
		z.byName = map[string]uint32{}
	}
	z.byName[zone] = i
	return i
}

// name is the zone of interface index i: its interface's name, or the number.
func (z *zones) name(i uint32) string {
	if i == 0 {
		return ""
	}
	if n, ok := z.byIndex[i]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(i), 10)
	if ifi, err := net.InterfaceByIndex(int(i)); err == nil {
		n = ifi.Name
	}
	if z.byIndex == nil {
		z.byIndex = map[uint32]string{}
	}
	z.byIndex[i] = n
	return n
}

// receiver reads datagrams with recvfrom(2). Reads are serialised: the SFU's socket has one
// reader (pion/ice's mux), and a mutex nobody else holds costs little.
type receiver struct {
	c     *net.UDPConn
	rc    syscall.RawConn
	mu    sync.Mutex
	p     []byte
	from  unix.RawSockaddrAny
	flen  uint32
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
	zones zones
}

func newReceiver(c *net.UDPConn) (*receiver, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &receiver{c: c, rc: rc}
	r.fn = r.call
	return r, nil
}

func (r *receiver) read(p []byte) (int, netip.AddrPort, error) {
	if len(p) == 0 {
		return r.c.ReadFromUDPAddrPort(p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p = p
	err := r.rc.Read(r.fn)
	r.p = nil
	if err != nil {
		if op, ok := err.(*net.OpError); ok { // "raw-read": report it as a read
			err = op.Err
		}
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: r.c.LocalAddr(), Err: err}
	}
	if r.errno != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: r.c.LocalAddr(), Err: r.errno}
	}
	return r.n, fromSockaddr(&r.from, &r.zones), nil
}

func (r *receiver) call(fd uintptr) bool {
	for {
		r.flen = unix.SizeofSockaddrAny
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)), 0,
			uintptr(unsafe.Pointer(&r.from)), uintptr(unsafe.Pointer(&r.flen)))
		switch errno {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // nothing to read: wait in the poller
		}
		r.n, r.errno = 0, errno
		return true
	}
}

// fromSockaddr is the address of a sockaddr_in or sockaddr_in6, as net's ReadFromUDPAddrPort
// gives it (an IPv6 socket's IPv4 peers as IPv4-mapped addresses).
func fromSockaddr(sa *unix.RawSockaddrAny, z *zones) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port)
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).WithZone(z.name(p.Scope_id)), port)
	}
	return netip.AddrPort{}
}
