package peer

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestKeepInactive: the SFU's inactive media sections are applied as sendonly, the others
// untouched, and the answer's sections for them say inactive again, the others untouched.
func TestKeepInactive(t *testing.T) {
	section := func(kind, mid, dir string) string {
		return "m=" + kind + " 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:" + mid + "\r\na=" + dir + "\r\na=rtpmap:96 " +
			map[string]string{"audio": "opus/48000/2", "video": "VP8/90000"}[kind] + "\r\n"
	}
	head := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	offer := head + section("audio", "0", "recvonly") + section("video", "1", "recvonly") +
		section("audio", "2", "inactive") + section("video", "3", "sendonly") + section("video", "4", "inactive")
	applied, ended, err := keepInactive(offer)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(ended)); !slices.Equal(got, []string{"2", "4"}) {
		t.Errorf("ended sections %v, want [2 4]", got)
	}
	if strings.Contains(applied, "a=inactive") || strings.Count(applied, "a=sendonly") != 3 || strings.Count(applied, "a=recvonly") != 2 {
		t.Errorf("applied offer:\n%s", applied)
	}
	// What Pion answers to that: recvonly where the offer said sendonly.
	answer := head + section("audio", "0", "sendonly") + section("video", "1", "sendonly") +
		section("audio", "2", "recvonly") + section("video", "3", "recvonly") + section("video", "4", "recvonly")
	sent, err := answerInactive(answer, ended)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"a=mid:2\r\na=inactive", "a=mid:3\r\na=recvonly", "a=mid:4\r\na=inactive", "a=mid:0\r\na=sendonly",
	} {
		if !strings.Contains(sent, want) {
			t.Errorf("the answer sent lacks %q:\n%s", want, sent)
		}
	}
	if same, err := answerInactive(answer, nil); err != nil || same != answer {
		t.Errorf("with no ended sections the answer changed (%v)", err)
	}
	if _, _, err := keepInactive("not SDP"); err == nil {
		t.Error("keepInactive of garbage: no error")
	}
}
