// Package udpbatch is a UDP socket whose writes are queued and sent in batches, many
// datagrams per system call (sendmmsg(2) on Linux), for a server that sends to many peers
// from one port: the SFU's media port.
//
// A write copies the datagram into a pooled buffer and queues it; one writer goroutine per
// socket sends everything queued. Batching is natural: while the writer is in a system call,
// the next datagrams queue up, and it sends them all with the next one. An idle socket adds
// no delay: the writer wakes on the first datagram. The queue is bounded: a write that finds
// it full waits for the writer to take what is queued (back pressure, as a blocking
// sendto(2) gives), but at most MaxWait; then the datagram is dropped and counted.
//
// On Linux the socket's reads and writes are raw system calls, which the Go scheduler does
// not see (sys_linux.go says why); elsewhere they go through x/net and net.
package udpbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
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
}

// Stats are a Conn's totals since New.
type Stats struct {
	Sent    uint64 `json:"sent"`    // datagrams the kernel took
	Batches uint64 `json:"batches"` // system calls that sent them
	Dropped uint64 `json:"dropped"` // writes dropped because the queue stayed full for MaxWait
	Waits   uint64 `json:"waits"`   // writes that found the queue full and waited
	Errors  uint64 `json:"errors"`  // datagrams the kernel refused (e.g. EPERM from a firewall, ENETUNREACH)
}

// Conn is a net.PacketConn over a *net.UDPConn whose writes are batched. It also has the
// allocation-free methods ReadFromAddrPort and WriteToAddrPort (pion/ice's
// AddrPortReaderWriter). Writes never block and report no delivery error: as with any UDP
// socket, a datagram may be lost; Stats counts the ones this side lost.
type Conn struct {
	c    *net.UDPConn
	out  *sender   // the writer goroutine's
	in   *receiver // serialises reads
	max  int       // queue bound
	wait time.Duration

	mu      sync.Mutex
	queue   []*datagram
	closing bool
	room    chan struct{} // made by a write that waits for room, closed by the writer
	wake    chan struct{} // capacity 1
	done    chan struct{} // closed when the writer has ended
	close   sync.Once

	pool sync.Pool // *datagram

	sent, batches, dropped, waits, errs atomic.Uint64
}

// datagram is one queued write.
type datagram struct {
	buf []byte
	to  netip.AddrPort
}

// maxDatagram is the buffer size pooled datagrams start with: a full Ethernet MTU. Larger
// writes get a buffer of their own size once, which then stays with the pooled datagram.
const maxDatagram = 1500

// New wraps c; the Conn owns it from now on, and Close closes it. The writer goroutine runs
// until Close.
func New(c *net.UDPConn, o Options) (*Conn, error) {
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
	out, err := newSender(c, o.Batch)
	if err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	in, err := newReceiver(c)
	if err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	b := &Conn{c: c, out: out, in: in, max: o.QueueLen, wait: o.MaxWait, wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.pool.New = func() any { return &datagram{buf: make([]byte, 0, maxDatagram)} }
	go b.writer()
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
	d := b.pool.Get().(*datagram)
	d.buf = append(d.buf[:0], p...)
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
			return len(p), nil
		}
		b.mu.Lock()
	}
	if b.closing {
		b.mu.Unlock()
		b.pool.Put(d)
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: net.ErrClosed}
	}
	if len(b.queue) >= b.max {
		b.mu.Unlock()
		b.pool.Put(d)
		b.dropped.Add(1)
		return len(p), nil
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
	return len(p), nil
}

// writer sends what is queued until Close, then what Close left queued.
func (b *Conn) writer() {
	defer close(b.done)
	var batch []*datagram // swapped with b.queue, so neither is reallocated in the steady state
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
func (b *Conn) send(batch []*datagram) {
	for len(batch) > 0 {
		k := min(len(batch), b.out.max())
		n, err := b.out.send(batch[:k])
		b.sent.Add(uint64(n))
		if n > 0 {
			b.batches.Add(1)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				b.errs.Add(uint64(len(batch) - n))
				break
			}
			// sendmmsg(2) reports an error only for the first datagram of a call: the one
			// at n failed.
			b.errs.Add(1)
			n++
		}
		batch = batch[n:]
	}
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
		err = b.c.Close()
	})
	return err
}

// Stats returns the totals so far.
func (b *Conn) Stats() Stats {
	return Stats{Sent: b.sent.Load(), Batches: b.batches.Load(), Dropped: b.dropped.Load(), Waits: b.waits.Load(),
		Errors: b.errs.Load()}
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
