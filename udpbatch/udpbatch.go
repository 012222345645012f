// Package udpbatch is a UDP socket whose writes are queued and sent in batches, many
// datagrams per system call (sendmmsg(2) on Linux), for a server that sends to many peers
// from one port: the SFU's media port.
//
// A write copies the datagram into a pooled buffer and queues it (or the caller fills the
// pooled buffer itself: Datagram, Send); one writer goroutine per socket sends everything
// queued. Batching is natural: while the writer is in a system call, the next datagrams
// queue up, and it sends them all with the next one. An idle socket adds no delay: the
// writer wakes on the first datagram. The queue is bounded: a write that finds it full waits
// for the writer to take what is queued (back pressure, as a blocking sendto(2) gives), but
// at most MaxWait; then the datagram is dropped and counted.
//
// Where the kernel has UDP generic segmentation offload (Linux's UDP_SEGMENT, since 4.18),
// datagrams of one batch to one address go as one message when their sizes allow it: the
// kernel takes them through its stack as one buffer and cuts it into the datagrams at the
// last step (in the network card where it can, else in software), which costs it about half
// as much per datagram for runs of three. The datagrams on the wire are the ones written.
//
// On Linux the socket's reads and writes are raw system calls, which the Go scheduler does
// not see, and a Conn of Listen sends from a second socket on its address, one that Go's
// network poller does not watch (sys_linux.go says why of both); elsewhere they go through
// x/net and net.
package udpbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultQueueLen = 8192
	DefaultBatch    = 64
	DefaultMaxWait  = 250 * time.Millisecond
)

// Options adjusts a Conn. The zero value is a working default.
type Options struct {
	// QueueLen is how many datagrams may wait for the writer; 0 means DefaultQueueLen.
	QueueLen int
	// MaxWait is how long a write that finds the queue full waits for room before its
	// datagram is dropped (Stats.Dropped); 0 means DefaultMaxWait, < 0 not at all.
	MaxWait time.Duration
	// Batch is the most datagrams sent with one system call; 0 means DefaultBatch. Linux
	// takes at most 1024 (UIO_MAXIOV).
	Batch int
	// NoGSO sends every datagram as a message of its own, never several to one address as
	// one segmented message (UDP_SEGMENT).
	NoGSO bool
	// ReadBuffer and WriteBuffer are the socket's receive and send buffer sizes in bytes
	// (SO_RCVBUF, SO_SNDBUF), for Listen; 0 leaves the system's default.
	ReadBuffer, WriteBuffer int
	// NoSendOnly makes a Conn of Listen send from the socket it reads, as a Conn of New
	// does, rather than from a send-only socket on the same address (Linux; sys_linux.go
	// says why).
	NoSendOnly bool
}

// Stats are a Conn's totals since New.
type Stats struct {
	Sent    uint64 `json:"sent"`    // datagrams the kernel took
	Batches uint64 `json:"batches"` // system calls that sent them
	Dropped uint64 `json:"dropped"` // writes dropped because the queue stayed full for MaxWait
	Waits   uint64 `json:"waits"`   // writes that found the queue full and waited
	Errors  uint64 `json:"errors"`  // datagrams the kernel refused (e.g. EPERM from a firewall, ENETUNREACH)
	// Segmented counts the datagrams of Sent that went as segments of a larger message
	// (UDP generic segmentation offload), two or more to one address.
	Segmented uint64 `json:"segmented"`
	// SendOnly says the datagrams go from a send-only socket on the Conn's address
	// (Listen, on Linux), the socket read only when that one's buffer is full.
	SendOnly bool `json:"send_only"`
	// SendOnlyFull counts the system calls that found the send-only socket's buffer full
	// (the network card or its queue slower than the SFU), whose datagrams then went from
	// the socket itself.
	SendOnlyFull uint64 `json:"send_only_full"`
}

// Conn is a net.PacketConn over a *net.UDPConn whose writes are batched. It also has the
// allocation-free methods ReadFromAddrPort and WriteToAddrPort (pion/ice's
// AddrPortReaderWriter). Writes never block and report no delivery error: as with any UDP
// socket, a datagram may be lost; Stats counts the ones this side lost.
type Conn struct {
	c   *net.UDPConn
	out *sender   // the writer goroutine's
	in  *receiver // serialises reads

	sendOnly bool // out sends from a send-only socket (Listen)
	max      int  // queue bound
	wait     time.Duration

	mu      sync.Mutex
	queue   []*Datagram
	closing bool
	room    chan struct{} // made by a write that waits for room, closed by the writer
	wake    chan struct{} // capacity 1
	done    chan struct{} // closed when the writer has ended
	close   sync.Once

	pool sync.Pool // *Datagram

	gso  atomic.Bool // segmented messages allowed: the kernel has them and they have not failed
	plan plan        // the writer's

	sent, batches, dropped, waits, errs, segmented, sendOnlyFull atomic.Uint64
}

// Datagram is a buffer of the Conn's pool, to fill and queue (Send) without the copy
// WriteToAddrPort makes: a caller that builds its datagrams, as an SRTP sender encrypting
// in place, writes each byte once.
type Datagram struct {
	// Buf is the datagram: a Datagram from the pool has length 0 and room for at least
	// 1500 bytes (an Ethernet MTU). Appending past its capacity is fine: the larger buffer
	// then stays with the Datagram.
	Buf []byte
	to  netip.AddrPort
}

// maxDatagram is the buffer size pooled datagrams start with: a full Ethernet MTU. Larger
// writes get a buffer of their own size once, which then stays with the pooled datagram.
const maxDatagram = 1500

// New wraps c; the Conn owns it from now on, and Close closes it. The writer goroutine runs
// until Close.
func New(c *net.UDPConn, o Options) (*Conn, error) { return newConn(c, o, -1) }

// newConn is New, sending from twin, a send-only socket of c's address, unless it is -1.
func newConn(c *net.UDPConn, o Options, twin int) (*Conn, error) {
	_, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("udpbatch: local address %v is not UDP", c.LocalAddr())
	}
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	o.Batch = min(o.Batch, 1024)
	if o.MaxWait == 0 {
		o.MaxWait = DefaultMaxWait
	}
	out, err := newSender(c, o.Batch, twin)
	if err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	in, err := newReceiver(c)
	if err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	b := &Conn{c: c, out: out, in: in, sendOnly: twin >= 0, max: o.QueueLen, wait: o.MaxWait, wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.gso.Store(!o.NoGSO && out.gso())
	b.pool.New = func() any { return &Datagram{Buf: make([]byte, 0, maxDatagram)} }
	go b.writer()
	return b, nil
}

// Listen opens a UDP socket on laddr (port 0: one the system picks) and wraps it, as New
// does. On Linux the Conn sends from a second socket on the same address, which Go's
// network poller does not watch, and which receives nothing: every datagram arriving at the
// address goes to the first socket (sys_linux.go says how, and why). Where that cannot be
// done, or with Options.NoSendOnly, the first socket sends too.
func Listen(laddr netip.AddrPort, o Options) (*Conn, error) {
	c, twin, err := listen(laddr, o)
	if err != nil {
		return nil, err
	}
	b, err := newConn(c, o, twin)
	if err != nil {
		c.Close()
		closeTwin(twin)
		return nil, err
	}
	return b, nil
}

// ReadFrom reads a datagram, as (*net.UDPConn).ReadFrom.
func (b *Conn) ReadFrom(p []byte) (int, net.Addr, error) { return b.c.ReadFrom(p) }

// ReadFromAddrPort reads a datagram without allocating its source address.
func (b *Conn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.in.read(p)
}

// WriteTo queues p for addr, which must be a *net.UDPAddr. It returns len(p) unless the
// Conn is closed (net.ErrClosed) or addr is not UDP.
func (b *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("not a UDP address")}
	}
	return b.WriteToAddrPort(p, a.AddrPort())
}

// WriteToAddrPort queues a copy of p for addr. It returns len(p), or net.ErrClosed after
// Close. A write that finds the queue full waits up to Options.MaxWait for room; if there
// is still none, the datagram is dropped and counted, and the write still returns len(p):
// to the caller it is a datagram lost on the way. addr must be of the socket's address
// family (an IPv4-mapped IPv6 address goes as IPv4); the kernel refuses others
// (Stats.Errors).
func (b *Conn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	d := b.Datagram()
	d.Buf = append(d.Buf, p...)
	if err := b.Send(d, addr); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Datagram returns an empty Datagram from the pool, to fill and Send.
func (b *Conn) Datagram() *Datagram {
	d := b.pool.Get().(*Datagram)
	d.Buf = d.Buf[:0]
	return d
}

// Send queues d for addr, as WriteToAddrPort queues its copy; the Conn owns d from now on,
// whatever Send returns: net.ErrClosed after Close, nil otherwise (a datagram dropped for
// want of room is counted in Stats.Dropped).
func (b *Conn) Send(d *Datagram, addr netip.AddrPort) error {
	d.to = addr

	b.mu.Lock()
	var timeout *time.Timer // made on the slow path only
	for len(b.queue) >= b.max && !b.closing {
		if timeout == nil {
			if b.wait < 0 {
				break
			}
			b.waits.Add(1)
			timeout = time.NewTimer(b.wait)
			defer timeout.Stop()
		}
		if b.room == nil {
			b.room = make(chan struct{})
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-timeout.C:
			b.dropped.Add(1)
			b.pool.Put(d)
			return nil
		}
		b.mu.Lock()
	}
	if b.closing {
		b.mu.Unlock()
		b.pool.Put(d)
		return &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: net.ErrClosed}
	}
	if len(b.queue) >= b.max {
		b.mu.Unlock()
		b.pool.Put(d)
		b.dropped.Add(1)
		return nil
	}
	b.queue = append(b.queue, d)
	first := len(b.queue) == 1
	b.mu.Unlock()
	if first {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// writer sends what is queued until Close, then what Close left queued.
func (b *Conn) writer() {
	defer close(b.done)
	var batch []*Datagram // swapped with b.queue, so neither is reallocated in the steady state
	for range b.wake {
		for {
			b.mu.Lock()
			batch, b.queue = b.queue, batch[:0]
			closing := b.closing
			if b.room != nil { // the queue is empty now: writes waiting for room go on
				close(b.room)
				b.room = nil
			}
			b.mu.Unlock()
			if len(batch) == 0 {
				if closing {
					return
				}
				break
			}
			b.send(batch)
			for i, d := range batch {
				b.pool.Put(d)
				batch[i] = nil
			}
		}
	}
}

// send writes batch, Options.Batch datagrams per system call. A datagram the kernel refuses is
// counted and skipped; the rest still go.
func (b *Conn) send(batch []*Datagram) {
	most := 1
	if b.gso.Load() {
		most = min(b.out.max(), maxSegments)
	}
	order, segs := b.plan.make(batch, most)
	for len(segs) > 0 {
		// As many messages as fit in one call: at most max datagrams.
		m, k := 0, 0
		for m < len(segs) && k+segs[m] <= b.out.max() {
			k += segs[m]
			m++
		}
		n, err := b.out.send(order[:k], segs[:m])
		if b.out.full {
			b.sendOnlyFull.Add(1)
		}
		sent := 0 // datagrams in the n messages sent
		for _, s := range segs[:n] {
			sent += s
			if s > 1 {
				b.segmented.Add(uint64(s))
			}
		}
		b.sent.Add(uint64(sent))
		if n > 0 {
			b.batches.Add(1)
		}
		order, segs = order[sent:], segs[n:]
		if err == nil {
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			b.errs.Add(uint64(len(order)))
			break
		}
		// sendmmsg(2) reports an error only for the first message of a call it could not
		// send: the one at n.
		if segs[0] > 1 {
			// A segmented message the kernel refused goes again, a datagram at a time. Some
			// errors say it takes none (no checksum offload on the route's device, or IPsec),
			// and others, like EMSGSIZE (a segment larger than the path MTU), are about this
			// one.
			if gsoRefused(err) {
				b.gso.Store(false)
			}
			b.sendEach(order[:segs[0]])
		} else {
			b.errs.Add(1)
		}
		order, segs = order[segs[0]:], segs[1:]
	}
}

// sendEach writes datagrams one message each, counting the ones refused.
func (b *Conn) sendEach(ds []*Datagram) {
	for len(ds) > 0 {
		n, err := b.out.send(ds, nil)
		if b.out.full {
			b.sendOnlyFull.Add(1)
		}
		b.sent.Add(uint64(n))
		if n > 0 {
			b.batches.Add(1)
		}
		ds = ds[n:]
		if err != nil {
			b.errs.Add(1)
			ds = ds[1:]
		}
	}
}

// maxSegments is the most datagrams in one segmented message (Linux's UDP_MAX_SEGMENTS),
// and maxSegmented the most bytes (an IPv4 datagram's, less its headers).
const (
	maxSegments  = 64
	maxSegmented = 65535 - 20 - 8
)

// plan orders a batch into messages for segmentation: a message is datagrams to one
// address, all of one size but the last, which may be shorter (what UDP_SEGMENT cuts a
// message into). Datagrams to one address keep their order; those to different addresses
// need not. It is the writer goroutine's, and reuses its slices: a plan allocates nothing
// once they have grown.
type plan struct {
	open  map[netip.AddrPort]int32 // an address's message that may take more
	msgs  []planned
	next  []int32 // the datagram after batch[i] in its message, or -1
	order []*Datagram
	segs  []int
}

type planned struct {
	first, last  int32 // indexes in the batch
	n, size, sum int   // datagrams, the size of the first, bytes
	full         bool  // takes no more: it ended with a shorter datagram, or is at a limit
}

// make returns the batch in send order and each message's number of datagrams; no
// message has more than most.
func (p *plan) make(batch []*Datagram, most int) ([]*Datagram, []int) {
	if most <= 1 {
		p.segs = p.segs[:0]
		for range batch {
			p.segs = append(p.segs, 1)
		}
		return batch, p.segs
	}
	if p.open == nil {
		p.open = map[netip.AddrPort]int32{}
	}
	clear(p.open)
	p.msgs = p.msgs[:0]
	p.next = slices.Grow(p.next[:0], len(batch))[:len(batch)]
	for i, d := range batch {
		p.next[i] = -1
		size := len(d.Buf)
		if m, ok := p.open[d.to]; ok {
			pm := &p.msgs[m]
			if !pm.full && size <= pm.size && pm.sum+size <= maxSegmented {
				p.next[pm.last] = int32(i)
				pm.last = int32(i)
				pm.n++
				pm.sum += size
				pm.full = size < pm.size || pm.n >= most
				continue
			}
		}
		p.open[d.to] = int32(len(p.msgs))
		p.msgs = append(p.msgs, planned{first: int32(i), last: int32(i), n: 1, size: size, sum: size, full: most <= 1})
	}
	p.order, p.segs = p.order[:0], p.segs[:0]
	for _, m := range p.msgs {
		for i := m.first; i >= 0; i = p.next[i] {
			p.order = append(p.order, batch[i])
		}
		p.segs = append(p.segs, m.n)
	}
	return p.order, p.segs
}

// Close stops accepting writes, waits until what was queued has been sent, and closes the
// socket. It returns the socket's Close error.
func (b *Conn) Close() error {
	var err error
	b.close.Do(func() {
		b.mu.Lock()
		b.closing = true
		if b.room != nil {
			close(b.room)
			b.room = nil
		}
		b.mu.Unlock()
		select {
		case b.wake <- struct{}{}:
		default:
		}
		<-b.done
		b.out.close()
		err = b.c.Close()
	})
	return err
}

// Stats returns the totals so far.
func (b *Conn) Stats() Stats {
	return Stats{Sent: b.sent.Load(), Batches: b.batches.Load(), Dropped: b.dropped.Load(), Waits: b.waits.Load(),
		Errors: b.errs.Load(), Segmented: b.segmented.Load(), SendOnly: b.sendOnly, SendOnlyFull: b.sendOnlyFull.Load()}
}

// LocalAddr returns the socket's address, a *net.UDPAddr.
func (b *Conn) LocalAddr() net.Addr { return b.c.LocalAddr() }

// SetDeadline sets the read deadline: writes never block, so they have none.
func (b *Conn) SetDeadline(t time.Time) error { return b.c.SetReadDeadline(t) }

// SetReadDeadline sets the read deadline of the socket.
func (b *Conn) SetReadDeadline(t time.Time) error { return b.c.SetReadDeadline(t) }

// SetWriteDeadline does nothing: writes never block. (pion/ice sets a write deadline on
// its shared socket to cut a blocked write short; on the socket itself it would make the
// writer's system calls fail.)
func (b *Conn) SetWriteDeadline(time.Time) error { return nil }
