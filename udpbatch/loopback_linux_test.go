//go:build linux

package udpbatch_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parley-rtc/parley/udpbatch"
)

// receiversEnv makes the test binary a receiving process for BenchmarkLoopback: it opens
// that many UDP sockets on 127.0.0.1, prints their ports and "ready", reads every socket
// until its standard input ends, then prints how many datagrams it read.
const receiversEnv = "PARLEY_UDPBATCH_RECEIVERS"

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(receiversEnv)); err == nil {
		receiveAll(n)
		return
	}
	os.Exit(m.Run())
}

func receiveAll(n int) {
	var got atomic.Uint64
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(c.LocalAddr().(*net.UDPAddr).Port)
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	time.Sleep(200 * time.Millisecond) // the last datagrams in the sockets' buffers
	fmt.Println(got.Load())
}

// The traffic of BenchmarkLoopback, which is the SFU's at N = 200 in `parley bench sfu`:
// each subscriber gets the sample media's 135 RTP packets a second, video frames of 2 to 3
// packets (85 a second) 30 times a second and an audio packet every 20 ms.
const (
	loopbackSubscribers = 200
	videoSize           = 1200 // bytes; a frame's last packet is lastSize
	lastSize            = 700
	audioSize           = 150
)

var framePackets = [...]int{3, 3, 3, 3, 3, 2} // 85 packets in 30 frames

// BenchmarkLoopback measures what sending costs the process, in CPU time (user and
// system, getrusage(2)) per datagram, with nothing else to do: the SFU's traffic at N =
// 200 (above) sent to 200 sockets of another process on loopback, where the kernel
// delivers each datagram to its socket in the sender's context and charges the sender for
// it. This is the part of the SFU's CPU per forwarded packet that the kernel takes, before
// any SRTP, RTCP or ICE. Sub-benchmarks: gso (the media port as the SFU runs it), batch
// (sendmmsg without segmentation), single (a system call per datagram, as a sendto per
// packet per subscriber). ns/op is left out: the traffic is paced, so it is the pacing.
//
//	go test -run '^$' -bench Loopback -benchtime 270000x -count 6 ./udpbatch
//
// runs each for 10 s six times.
func BenchmarkLoopback(b *testing.B) {
	for _, c := range []struct {
		name string
		o    udpbatch.Options
	}{
		{"gso", udpbatch.Options{}},
		{"batch", udpbatch.Options{NoGSO: true}},
		{"single", udpbatch.Options{NoGSO: true, Batch: 1}},
	} {
		b.Run(c.name, func(b *testing.B) { benchLoopback(b, c.o) })
	}
}

func benchLoopback(b *testing.B, o udpbatch.Options) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", receiversEnv, loopbackSubscribers))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	var subs []netip.AddrPort
	for lines.Scan() && lines.Text() != "ready" {
		port, err := strconv.ParseUint(lines.Text(), 10, 16)
		if err != nil {
			b.Fatalf("receiving process: %s", lines.Text())
		}
		subs = append(subs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)))
	}
	if len(subs) != loopbackSubscribers {
		b.Fatalf("receiving process opened %d sockets, want %d", len(subs), loopbackSubscribers)
	}

	c, err := udpbatch.Listen(netip.MustParseAddrPort("127.0.0.1:0"), o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	send := func(size int, to netip.AddrPort) {
		d := c.Datagram()
		d.Buf = d.Buf[:size] // a pooled datagram has room for 1500 bytes
		if err := c.Send(d, to); err != nil {
			b.Fatal(err)
		}
	}
	var sent, frames int
	// run sends the traffic, paced, until it has sent n datagrams more.
	run := func(n int) {
		until := sent + n
		now := time.Now()
		video, audio := now, now
		for sent < until {
			if !audio.Before(video) {
				time.Sleep(time.Until(video))
				k := framePackets[frames%len(framePackets)]
				frames++
				for _, to := range subs {
					for range k - 1 {
						send(videoSize, to)
					}
					send(lastSize, to)
				}
				sent += k * len(subs)
				video = video.Add(time.Second / 30)
			} else {
				time.Sleep(time.Until(audio))
				for _, to := range subs {
					send(audioSize, to)
				}
				sent += len(subs)
				audio = audio.Add(20 * time.Millisecond)
			}
		}
	}

	run(27_000) // about a second: the receiving process's sockets and goroutines warm
	before, cpu0 := sent, cpuTime(b)
	b.ResetTimer()
	run(max(b.N, 27_000)) // at least a second's worth: fewer would measure the pacing's start
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	n := sent - before
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/datagram")
	b.ReportMetric(float64(c.Stats().Segmented)/float64(c.Stats().Sent), "segmented/datagram")
	b.ReportMetric(0, "ns/op")

	time.Sleep(100 * time.Millisecond) // the writer's last batch
	if _, err := stdin.Write([]byte("\n")); err != nil {
		b.Fatal(err)
	}
	if !lines.Scan() {
		b.Fatal("receiving process ended without its count")
	}
	got, err := strconv.Atoi(lines.Text())
	if err != nil {
		b.Fatalf("receiving process: %s", lines.Text())
	}
	if s := c.Stats(); got != sent || s.Dropped+s.Errors != 0 {
		b.Fatalf("received %d of %d datagrams (%d dropped, %d refused)", got, sent, s.Dropped, s.Errors)
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
