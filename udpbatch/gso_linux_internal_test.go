//go:build linux

package udpbatch

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// queueAtOnce queues writes as one batch: the writer takes them together.
func queueAtOnce(b *Conn, ps [][]byte, to []netip.AddrPort) {
	b.mu.Lock()
	for i, p := range ps {
		d := b.pool.Get().(*Datagram)
		d.Buf = append(d.Buf[:0], p...)
		d.to = to[i]
		b.queue = append(b.queue, d)
	}
	b.mu.Unlock()
	b.wake <- struct{}{}
}

// gsoCase is a batch of datagrams of several sizes to two receivers, and what each should
// get.
type gsoCase struct {
	send     *Conn
	recv     []*net.UDPConn
	ps       [][]byte
	to       []netip.AddrPort
	want     [][][]byte // by receiver
	wantSegs uint64     // datagrams that go as segments
}

func newGSOCase(t *testing.T, loopback string, o Options, sender func(*net.UDPConn)) *gsoCase {
	t.Helper()
	la := &net.UDPAddr{IP: net.ParseIP(loopback)}
	s, err := net.ListenUDP("udp", la)
	if err != nil {
		t.Fatalf("listen on %s: %v", loopback, err)
	}
	if sender != nil {
		sender(s)
	}
	c := &gsoCase{}
	if c.send, err = New(s, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.send.Close() })
	for range 2 {
		r, err := net.ListenUDP("udp", la)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		c.recv = append(c.recv, r)
	}
	c.want = make([][][]byte, 2)
	// Receiver 0 gets runs of 1,000 bytes (ended by a 600-byte datagram, then by a longer
	// one), receiver 1 a run of 500: TestPlan's batch.
	sizes := []struct{ r, size int }{{0, 1000}, {1, 500}, {0, 1000}, {0, 1000}, {1, 500}, {0, 600}, {0, 1000}, {1, 700}, {0, 1000}}
	for i, s := range sizes {
		p := make([]byte, s.size)
		binary.BigEndian.PutUint32(p, uint32(i))
		for j := 4; j < len(p); j++ {
			p[j] = byte(i + j)
		}
		c.ps = append(c.ps, p)
		c.to = append(c.to, c.recv[s.r].LocalAddr().(*net.UDPAddr).AddrPort())
		c.want[s.r] = append(c.want[s.r], p)
	}
	c.wantSegs = 8 // 4 + 2 + 2 of the 9
	return c
}

// check has each receiver read what it should get, whole and in order.
func (c *gsoCase) check(t *testing.T) {
	t.Helper()
	buf := make([]byte, 65536)
	for r, want := range c.want {
		_ = c.recv[r].SetReadDeadline(time.Now().Add(10 * time.Second))
		for i, w := range want {
			n, err := c.recv[r].Read(buf)
			if err != nil {
				t.Fatalf("receiver %d, datagram %d: %v", r, i, err)
			}
			if !bytes.Equal(buf[:n], w) {
				t.Fatalf("receiver %d, datagram %d: %d bytes starting %x, want %d starting %x", r, i, n, buf[:min(n, 4)], len(w), w[:4])
			}
		}
	}
}

// Datagrams to one address go as segmented messages, and arrive as the datagrams written,
// in order.
func TestSegmented(t *testing.T) {
	for _, lo := range []string{"127.0.0.1", "::1"} {
		t.Run(lo, func(t *testing.T) {
			c := newGSOCase(t, lo, Options{}, nil)
			if !c.send.gso.Load() {
				t.Fatal("the kernel takes no UDP_SEGMENT")
			}
			queueAtOnce(c.send, c.ps, c.to)
			if err := c.send.Close(); err != nil {
				t.Fatal(err)
			}
			c.check(t)
			st := c.send.Stats()
			if st.Sent != uint64(len(c.ps)) || st.Segmented != c.wantSegs || st.Batches != 1 || st.Errors != 0 {
				t.Errorf("stats %+v, want %d sent, %d of them segmented, in 1 call", st, len(c.ps), c.wantSegs)
			}
		})
	}
}

// With NoGSO every datagram is a message of its own.
func TestNoGSO(t *testing.T) {
	c := newGSOCase(t, "127.0.0.1", Options{NoGSO: true}, nil)
	queueAtOnce(c.send, c.ps, c.to)
	if err := c.send.Close(); err != nil {
		t.Fatal(err)
	}
	c.check(t)
	if st := c.send.Stats(); st.Sent != uint64(len(c.ps)) || st.Segmented != 0 {
		t.Errorf("stats %+v, want %d sent, none segmented", st, len(c.ps))
	}
}

// A socket that refuses segmented messages (here one without UDP checksums, which makes
// the kernel answer EINVAL) gets each datagram again as a message of its own, and no more
// segmented ones.
func TestGSORefused(t *testing.T) {
	c := newGSOCase(t, "127.0.0.1", Options{}, func(s *net.UDPConn) {
		rc, err := s.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil || serr != nil {
			t.Fatalf("SO_NO_CHECK: %v %v", err, serr)
		}
	})
	queueAtOnce(c.send, c.ps, c.to)
	if err := c.send.Close(); err != nil {
		t.Fatal(err)
	}
	c.check(t)
	if st := c.send.Stats(); st.Sent != uint64(len(c.ps)) || st.Segmented != 0 || st.Errors != 0 {
		t.Errorf("stats %+v, want %d sent, none segmented, no errors", st, len(c.ps))
	}
	if c.send.gso.Load() {
		t.Error("segmentation still on")
	}
}

// A segmented message refused for its address (an IPv6 one on an IPv4 socket) counts each
// of its datagrams as an error; the others go, segmented as before.
func TestSegmentedRefusedAddress(t *testing.T) {
	c := newGSOCase(t, "127.0.0.1", Options{}, nil)
	bad := netip.MustParseAddrPort("[2001:db8::1]:9")
	ps := append([][]byte{c.ps[0], c.ps[0], c.ps[0]}, c.ps...)
	to := append([]netip.AddrPort{bad, bad, bad}, c.to...)
	queueAtOnce(c.send, ps, to)
	if err := c.send.Close(); err != nil {
		t.Fatal(err)
	}
	c.check(t)
	if st := c.send.Stats(); st.Sent != uint64(len(c.ps)) || st.Errors != 3 || st.Segmented != c.wantSegs {
		t.Errorf("stats %+v, want %d sent, %d segmented, 3 errors", st, len(c.ps), c.wantSegs)
	}
	if !c.send.gso.Load() {
		t.Error("segmentation turned off")
	}
}
