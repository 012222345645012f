package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/parley-rtc/parley/web"
)

// built is a client directory as web/webbuild writes it, with stand-in contents.
func built() fstest.MapFS {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	return fstest.MapFS{
		".gitkeep":       f(""),
		"index.html":     f("<!doctype html>page"),
		"index.html.br":  f("br(page)"),
		"index.html.gz":  f("gz(page)"),
		"style.css":      f("body{}"),
		"style.css.gz":   f("gz(css)"),
		"parley.wasm":    f("\x00asm wasm"),
		"parley.wasm.br": f("br(wasm)"),
		"parley.wasm.gz": f("gz(wasm)"),
	}
}

type response struct {
	code int
	hdr  http.Header
	body string
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	return response{w.Code, w.Result().Header, string(body)}
}

func TestHandlerNegotiatesEncoding(t *testing.T) {
	h := web.Handler(built())
	for _, tc := range []struct {
		path, accept, wantEnc, wantBody string
	}{
		{"/parley.wasm", "gzip, deflate, br, zstd", "br", "br(wasm)"},
		{"/parley.wasm", "gzip", "gzip", "gz(wasm)"},
		{"/parley.wasm", "br;q=0.5, gzip;q=0.9", "gzip", "gz(wasm)"},
		{"/parley.wasm", "br;q=0, gzip", "gzip", "gz(wasm)"},
		{"/parley.wasm", "*", "br", "br(wasm)"},
		{"/parley.wasm", "*;q=0", "", "\x00asm wasm"},
		{"/parley.wasm", "", "", "\x00asm wasm"},
		{"/parley.wasm", "identity", "", "\x00asm wasm"},
		{"/style.css", "br, gzip", "gzip", "gz(css)"}, // no .br stored: the next best
		{"/style.css", "br", "", "body{}"},
	} {
		r := get(t, h, "GET", tc.path, "Accept-Encoding", tc.accept)
		if r.code != 200 || r.hdr.Get("Content-Encoding") != tc.wantEnc || r.body != tc.wantBody {
			t.Errorf("GET %s, Accept-Encoding %q: %d, Content-Encoding %q, body %q; want 200, %q, %q",
				tc.path, tc.accept, r.code, r.hdr.Get("Content-Encoding"), r.body, tc.wantEnc, tc.wantBody)
		}
		if r.hdr.Get("Vary") != "Accept-Encoding" {
			t.Errorf("GET %s: Vary %q, want Accept-Encoding", tc.path, r.hdr.Get("Vary"))
		}
		if r.hdr.Get("Content-Length") != strconv.Itoa(len(tc.wantBody)) {
			t.Errorf("GET %s: Content-Length %q, want %d", tc.path, r.hdr.Get("Content-Length"), len(tc.wantBody))
		}
	}
}

func TestHandlerContentTypes(t *testing.T) {
	h := web.Handler(built())
	for path, want := range map[string]string{
		"/":            "text/html; charset=utf-8",
		"/index.html":  "text/html; charset=utf-8",
		"/style.css":   "text/css; charset=utf-8",
		"/parley.wasm": "application/wasm",
	} {
		r := get(t, h, "GET", path, "Accept-Encoding", "br, gzip")
		if got := r.hdr.Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
		}
		if got := r.hdr.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", path, got)
		}
	}
	if csp := get(t, h, "GET", "/").hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "'wasm-unsafe-eval'") {
		t.Errorf("the page's Content-Security-Policy %q does not allow WebAssembly", csp)
	}
}

func TestHandlerETags(t *testing.T) {
	h := web.Handler(built())
	br := get(t, h, "GET", "/parley.wasm", "Accept-Encoding", "br")
	gz := get(t, h, "GET", "/parley.wasm", "Accept-Encoding", "gzip")
	plain := get(t, h, "GET", "/parley.wasm")
	tags := map[string]bool{}
	for _, r := range []response{br, gz, plain} {
		tag := r.hdr.Get("ETag")
		if !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 10 {
			t.Fatalf("ETag %q is not a strong entity tag", tag)
		}
		tags[tag] = true
	}
	if len(tags) != 3 {
		t.Errorf("ETags of the br, gzip and plain forms are not all different: %v", tags)
	}
	if again := get(t, web.Handler(built()), "GET", "/parley.wasm", "Accept-Encoding", "br"); again.hdr.Get("ETag") != br.hdr.Get("ETag") {
		t.Errorf("ETag changed between two handlers of the same files")
	}

	for _, inm := range []string{br.hdr.Get("ETag"), `"other", ` + br.hdr.Get("ETag"), "W/" + br.hdr.Get("ETag"), "*"} {
		r := get(t, h, "GET", "/parley.wasm", "Accept-Encoding", "br", "If-None-Match", inm)
		if r.code != http.StatusNotModified || r.body != "" {
			t.Errorf("If-None-Match %s: %d with %d bytes, want 304 and no body", inm, r.code, len(r.body))
		}
		if r.hdr.Get("ETag") != br.hdr.Get("ETag") || r.hdr.Get("Vary") != "Accept-Encoding" {
			t.Errorf("304 headers: %v, want the ETag and Vary", r.hdr)
		}
	}
	// The gzip form's tag does not validate the brotli form.
	r := get(t, h, "GET", "/parley.wasm", "Accept-Encoding", "br", "If-None-Match", gz.hdr.Get("ETag"))
	if r.code != 200 || r.body != "br(wasm)" {
		t.Errorf("If-None-Match of another encoding: %d %q, want 200 and the brotli form", r.code, r.body)
	}
}

func TestHandlerRoutes(t *testing.T) {
	h := web.Handler(built())
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/", 200, "<!doctype html>page"},
		{"GET", "/s/k3QzP0sVb7tLwE4nH6uR1A", 200, "<!doctype html>page"},
		{"HEAD", "/s/k3QzP0sVb7tLwE4nH6uR1A", 200, ""},
		{"GET", "/s/", 404, ""},
		{"GET", "/s/a/b", 404, ""},
		{"GET", "/nope.js", 404, ""},
		{"GET", "/parley.wasm.br", 404, ""}, // stored forms are served by negotiation only
		{"GET", "/.gitkeep", 404, ""},
		{"POST", "/", 405, ""},
	} {
		r := get(t, h, tc.method, tc.path)
		if r.code != tc.code || (tc.body != "" && r.body != tc.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, r.code, r.body, tc.code, tc.body)
		}
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	h := web.Handler(fstest.MapFS{".gitkeep": &fstest.MapFile{}})
	for _, p := range []string{"/", "/s/abc"} {
		r := get(t, h, "GET", p)
		if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "web client not built: run make build") {
			t.Errorf("GET %s without a build: %d %q, want 503 and how to build", p, r.code, r.body)
		}
	}
	if r := get(t, h, "GET", "/parley.wasm"); r.code != 404 {
		t.Errorf("GET /parley.wasm without a build: %d, want 404", r.code)
	}
}

// TestDist checks that the embedded client, built or not, gives a working handler.
func TestDist(t *testing.T) {
	r := get(t, web.Handler(web.Dist()), "GET", "/")
	if r.code != 200 && r.code != http.StatusServiceUnavailable {
		t.Errorf("GET / from the embedded client: %d, want 200 (built) or 503 (not built)", r.code)
	}
}
