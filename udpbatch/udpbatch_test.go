package udpbatch_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parley-rtc/parley/udpbatch"
)

// pair is a batched sender and a plain receiver on one loopback address.
type pair struct {
	send *udpbatch.Conn
	recv *net.UDPConn
	to   netip.AddrPort
}

func newPair(t *testing.T, loopback string, o udpbatch.Options) *pair {
	t.Helper()
	a := &net.UDPAddr{IP: net.ParseIP(loopback)}
	recv, err := net.ListenUDP("udp", a)
	if err != nil {
		t.Fatalf("listen on %s: %v", loopback, err)
	}
	s, err := net.ListenUDP("udp", a)
	if err != nil {
		recv.Close()
		t.Fatalf("listen on %s: %v", loopback, err)
	}
	_ = recv.SetReadBuffer(4 << 20)
	send, err := udpbatch.New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		send.Close()
		recv.Close()
	})
	return &pair{send: send, recv: recv, to: recv.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// receiver reads datagrams of (writer, seq) into got until the socket closes.
type receiver struct {
	mu   sync.Mutex
	cond *sync.Cond
	got  map[uint32][]uint32
	n    int
	from netip.AddrPort
	done chan struct{}
}

func receive(t *testing.T, c *net.UDPConn) *receiver {
	r := &receiver{got: map[uint32][]uint32{}, done: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < 8 {
				t.Errorf("datagram of %d bytes", n)
				continue
			}
			r.mu.Lock()
			w, seq := binary.BigEndian.Uint32(buf[0:4]), binary.BigEndian.Uint32(buf[4:8])
			r.got[w] = append(r.got[w], seq)
			r.n++
			r.from = from
			r.cond.Broadcast()
			r.mu.Unlock()
		}
	}()
	return r
}

// waitFor waits until n datagrams have arrived, or fails after a generous time.
func (r *receiver) waitFor(t *testing.T, n int) {
	t.Helper()
	timer := time.AfterFunc(20*time.Second, func() {
		r.mu.Lock()
		r.n = -r.n - 1 // give up: wakes the waiter
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.n >= 0 && r.n < n {
		r.cond.Wait()
	}
	if r.n < 0 {
		t.Fatalf("%d of %d datagrams arrived within 20 s", -r.n-1, n)
	}
}

func datagram(w, seq uint32, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b[0:4], w)
	binary.BigEndian.PutUint32(b[4:8], seq)
	return b
}

// loopbacks runs f on IPv4 and IPv6 loopback.
func loopbacks(t *testing.T, f func(t *testing.T, loopback string)) {
	for _, lo := range []string{"127.0.0.1", "::1"} {
		t.Run(lo, func(t *testing.T) { f(t, lo) })
	}
}

// One writer's datagrams arrive whole, in order, from the socket's own address.
func TestOrder(t *testing.T) {
	loopbacks(t, func(t *testing.T, lo string) {
		p := newPair(t, lo, udpbatch.Options{})
		r := receive(t, p.recv)
		const bursts, per = 20, 100 // a burst at a time, so the receiver's buffer never overflows
		for b := range bursts {
			for i := range per {
				seq := uint32(b*per + i)
				// Sizes from 8 to 1400 bytes, and WriteTo as well as WriteToAddrPort.
				d := datagram(1, seq, 8+int(seq)%1393)
				var err error
				if seq%2 == 0 {
					_, err = p.send.WriteToAddrPort(d, p.to)
				} else {
					_, err = p.send.WriteTo(d, net.UDPAddrFromAddrPort(p.to))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			r.waitFor(t, (b+1)*per)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, seq := range r.got[1] {
			if seq != uint32(i) {
				t.Fatalf("datagram %d is %d", i, seq)
			}
		}
		if r.from != p.send.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Errorf("datagrams came from %v, want %v", r.from, p.send.LocalAddr())
		}
		p.send.Close() // the writer counts a batch after the receiver may have it
		st := p.send.Stats()
		if st.Sent != bursts*per || st.Dropped != 0 || st.Errors != 0 {
			t.Errorf("stats %+v, want %d sent and nothing dropped", st, bursts*per)
		}
		if st.Batches == 0 || st.Batches > st.Sent {
			t.Errorf("stats %+v: batches out of range", st)
		}
	})
}

// Datagrams filled in place and sent (Datagram, Send) arrive as written, one grown past
// the pooled buffer's 1500 bytes too; every Datagram comes empty, a reused one too, and
// Send after Close fails with net.ErrClosed.
func TestDatagram(t *testing.T) {
	// One P: the writer puts each sent Datagram back where the next Datagram takes it.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	loopbacks(t, func(t *testing.T, lo string) {
		p := newPair(t, lo, udpbatch.Options{})
		buf := make([]byte, 4096)
		_ = p.recv.SetReadDeadline(time.Now().Add(20 * time.Second))
		for i, size := range []int{1200, 8, 1500, 1800, 100, 8, 1499} {
			d := p.send.Datagram()
			if len(d.Buf) != 0 || cap(d.Buf) < 1500 {
				t.Fatalf("Datagram %d: length %d, capacity %d; want 0 and at least 1500", i, len(d.Buf), cap(d.Buf))
			}
			d.Buf = append(d.Buf, datagram(3, uint32(i), size)...)
			for j := 8; j < size; j++ {
				d.Buf[j] = byte(i + j)
			}
			want := bytes.Clone(d.Buf)
			if err := p.send.Send(d, p.to); err != nil {
				t.Fatal(err)
			}
			n, err := p.recv.Read(buf)
			if err != nil {
				t.Fatalf("datagram %d: %v", i, err)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("datagram %d: %d bytes, want the %d written", i, n, len(want))
			}
		}
		if err := p.send.Close(); err != nil {
			t.Fatal(err)
		}
		d := p.send.Datagram()
		d.Buf = append(d.Buf, datagram(3, 99, 8)...)
		if err := p.send.Send(d, p.to); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Send after Close: %v, want net.ErrClosed", err)
		}
	})
}

// Many writers at once: each one's datagrams arrive in its order, and several share a
// system call.
func TestManyWriters(t *testing.T) {
	loopbacks(t, func(t *testing.T, lo string) {
		p := newPair(t, lo, udpbatch.Options{})
		r := receive(t, p.recv)
		const writers, bursts, per = 16, 10, 20
		for b := range bursts {
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range per {
						if _, err := p.send.WriteToAddrPort(datagram(uint32(w), uint32(b*per+i), 200), p.to); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			r.waitFor(t, (b+1)*writers*per)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for w := range uint32(writers) {
			got := r.got[w]
			if len(got) != bursts*per {
				t.Errorf("writer %d: %d datagrams arrived, want %d", w, len(got), bursts*per)
			}
			for i, seq := range got {
				if seq != uint32(i) {
					t.Errorf("writer %d: datagram %d is %d", w, i, seq)
					break
				}
			}
		}
		p.send.Close() // the writer counts a batch after the receiver may have it
		st := p.send.Stats()
		if st.Sent != writers*bursts*per || st.Dropped != 0 {
			t.Errorf("stats %+v, want %d sent", st, writers*bursts*per)
		}
		if st.Batches >= st.Sent {
			t.Errorf("stats %+v: no system call sent more than one datagram", st)
		}
		t.Logf("%d datagrams in %d system calls", st.Sent, st.Batches)
	})
}

// With a queue of one and no waiting, concurrent writers overflow it: every write is then
// either sent or counted as dropped, and none blocks.
func TestBoundedQueue(t *testing.T) {
	p := newPair(t, "127.0.0.1", udpbatch.Options{QueueLen: 1, MaxWait: -1})
	r := receive(t, p.recv)
	const writers, per = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if n, err := p.send.WriteToAddrPort(datagram(uint32(w), uint32(i), 100), p.to); err != nil || n != 100 {
					t.Errorf("write: %d, %v", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.send.Close(); err != nil { // waits for the queue to drain
		t.Fatal(err)
	}
	st := p.send.Stats()
	if st.Sent+st.Dropped != writers*per || st.Errors != 0 || st.Waits != 0 {
		t.Fatalf("stats %+v: sent and dropped should make %d, with no wait", st, writers*per)
	}
	// The receiver's buffer may overflow here, so only the first datagram must arrive.
	r.waitFor(t, 1)
	t.Logf("%+v", st)
}

// Close sends what was queued, then refuses writes; the writer goroutine has ended, which
// the race detector and the socket's closing show.
func TestClose(t *testing.T) {
	loopbacks(t, func(t *testing.T, lo string) {
		p := newPair(t, lo, udpbatch.Options{})
		r := receive(t, p.recv)
		const n = 300
		for i := range n {
			if _, err := p.send.WriteToAddrPort(datagram(7, uint32(i), 500), p.to); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.send.Close(); err != nil {
			t.Fatal(err)
		}
		if st := p.send.Stats(); st.Sent != n {
			t.Errorf("after Close %d sent, want %d", st.Sent, n)
		}
		r.waitFor(t, n)
		if _, err := p.send.WriteToAddrPort(datagram(7, n, 8), p.to); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after Close: %v, want net.ErrClosed", err)
		}
		if _, _, err := p.send.ReadFromAddrPort(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after Close: %v, want net.ErrClosed", err)
		}
		if err := p.send.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// Reads return the datagram and its source address as net does (ReadFromAddrPort) and as a
// net.Addr (ReadFrom), time out at the read deadline, and end with net.ErrClosed.
func TestRead(t *testing.T) {
	loopbacks(t, func(t *testing.T, loopback string) {
		p := newPair(t, loopback, udpbatch.Options{})
		me := p.send.LocalAddr().(*net.UDPAddr)
		buf := make([]byte, 100)
		if err := p.send.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for _, msg := range []string{"hello", "again"} {
			if _, err := p.recv.WriteToUDP([]byte(msg), me); err != nil {
				t.Fatal(err)
			}
		}
		n, from, err := p.send.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "hello" || from.String() != p.recv.LocalAddr().String() {
			t.Fatalf("ReadFrom: %q from %v, %v", buf[:n], from, err)
		}
		n, fromAP, err := p.send.ReadFromAddrPort(buf)
		if err != nil || string(buf[:n]) != "again" || fromAP != p.to {
			t.Fatalf("ReadFromAddrPort: %q from %v, %v; want \"again\" from %v", buf[:n], fromAP, err, p.to)
		}
		// A datagram longer than the buffer is cut to it, as recvfrom(2) does.
		if _, err := p.recv.WriteToUDP([]byte("a longer datagram"), me); err != nil {
			t.Fatal(err)
		}
		if n, _, err := p.send.ReadFromAddrPort(buf[:4]); err != nil || string(buf[:n]) != "a lo" {
			t.Fatalf("short buffer: %q, %v", buf[:n], err)
		}
		if err := p.send.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		var ne net.Error
		if _, _, err := p.send.ReadFromAddrPort(buf); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past the deadline: %v, want a timeout", err)
		}
		// A write deadline in the past does not stop writes.
		if err := p.send.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		r := receive(t, p.recv)
		if _, err := p.send.WriteToAddrPort(datagram(3, 0, 8), p.to); err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, 1)
		if err := p.send.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		// Close ends a read in progress with net.ErrClosed.
		done := make(chan error, 1)
		go func() {
			_, _, err := p.send.ReadFromAddrPort(buf)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := p.send.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read during Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a read in progress did not end at Close")
		}
	})
}

// A dual-stack socket reports its IPv4 peers as IPv4-mapped IPv6 addresses, as net does,
// and sends to them given either form.
func TestDualStack(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatalf("dual-stack socket: %v", err)
	}
	b, err := udpbatch.New(c, udpbatch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(b.LocalAddr().(*net.UDPAddr).Port))
	if _, err := peer.WriteToUDPAddrPort([]byte("hi"), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, from, err := b.ReadFromAddrPort(buf)
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	want := netip.AddrPortFrom(netip.AddrFrom16(peerAddr.Addr().As16()), peerAddr.Port())
	if err != nil || from != want {
		t.Fatalf("read from %v, %v; want %v", from, err, want)
	}
	r := receive(t, peer)
	for i, addr := range []netip.AddrPort{from, peerAddr} {
		if _, err := b.WriteToAddrPort(datagram(1, uint32(i), 8), addr); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor(t, 2)
}

// A datagram the kernel refuses (here: an IPv6 destination for an IPv4 socket) is counted,
// and the ones queued with it still go.
func TestRefusedDatagram(t *testing.T) {
	p := newPair(t, "127.0.0.1", udpbatch.Options{})
	r := receive(t, p.recv)
	bad := netip.MustParseAddrPort("[2001:db8::1]:9")
	const n = 200
	for i := range n {
		if _, err := p.send.WriteToAddrPort(datagram(5, uint32(i), 64), p.to); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := p.send.WriteToAddrPort(datagram(5, 9999, 64), bad); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.send.Close(); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, n)
	if st := p.send.Stats(); st.Sent != n || st.Errors != n/10 {
		t.Errorf("stats %+v, want %d sent and %d errors", st, n, n/10)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, seq := range r.got[5] {
		if seq != uint32(i) {
			t.Fatalf("datagram %d is %d", i, seq)
		}
	}
}

// With a queue of one and time to wait, concurrent writers wait for room instead of
// dropping: back pressure.
func TestBackPressure(t *testing.T) {
	p := newPair(t, "127.0.0.1", udpbatch.Options{QueueLen: 1, MaxWait: time.Minute})
	r := receive(t, p.recv)
	const writers, bursts, per = 8, 10, 20
	for b := range bursts {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range per {
					if _, err := p.send.WriteToAddrPort(datagram(uint32(w), uint32(b*per+i), 100), p.to); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		r.waitFor(t, (b+1)*writers*per)
	}
	p.send.Close() // the writer counts a batch after the receiver may have it
	st := p.send.Stats()
	if st.Sent != writers*bursts*per || st.Dropped != 0 || st.Waits == 0 {
		t.Fatalf("stats %+v: want %d sent, none dropped, some writes waiting", st, writers*bursts*per)
	}
	t.Logf("%+v", st)
}

// Close lets writes waiting for room go: the writer drains the queue first, they then
// find the Conn closed or their datagram queued.
func TestCloseWhileWaiting(t *testing.T) {
	p := newPair(t, "127.0.0.1", udpbatch.Options{QueueLen: 1, MaxWait: time.Minute})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if _, err := p.send.WriteToAddrPort(datagram(uint32(w), uint32(i), 100), p.to); err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	for p.send.Stats().Waits == 0 {
		runtime.Gosched()
	}
	if err := p.send.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // every writer returned net.ErrClosed, none waits for a minute
}
