// Package web serves Parley's browser client: the page, its CSS, wasm_exec.js and the
// WebAssembly build of web/client, precompressed (brotli, gzip) and with strong ETags.
// web/webbuild writes those files; Dist is the copy embedded in the parley binary.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the client built into web/dist when the binary was compiled (`make build`
// builds it first). In a clean clone it holds no page, and Handler answers 503.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: fs.Sub cannot fail on it
	}
	return sub
}

// Content encodings a file may be stored in, in order of preference: each file name.ext
// may have name.ext.br and name.ext.gz beside it.
var encodings = [...]struct{ name, suffix string }{
	{"br", ".br"},
	{"gzip", ".gz"},
}

// representation is one stored form of a file: as is, or compressed.
type representation struct {
	data     []byte
	etag     string // strong (RFC 9110 §8.8.3), from the content, so it differs per encoding
	encoding string // "" for the identity form
}

type file struct {
	name  string
	ctype string
	plain representation
	enc   [len(encodings)]*representation // nil where not stored
}

type handler struct {
	files map[string]*file // by path without the leading slash
	index *file            // nil when the client is not built
	err   error            // why fsys could not be read, if it could not
}

// Handler serves the files of fsys (as web/webbuild writes them) read once, now:
//
//   - / and /s/{id} serve index.html: a session's link opens the page, which joins it;
//   - /{name} serves that file; names ending in .br or .gz and dotfiles are not served;
//   - the .br or .gz form is chosen by Accept-Encoding (RFC 9110 §12.5.3), with
//     Content-Encoding and Vary: Accept-Encoding;
//   - each form has its own strong ETag, and If-None-Match answers 304 (there are no
//     Range requests: the files are small enough to send whole);
//   - Cache-Control is no-cache: browsers revalidate, so a new deploy shows at once while
//     unchanged files cost a 304;
//   - anything else is 404, and methods other than GET and HEAD are 405.
//
// If fsys has no index.html, / and /s/{id} answer 503 "web client not built"; if fsys
// cannot be read, they answer 503 with the error.
func Handler(fsys fs.FS) http.Handler {
	h := &handler{files: make(map[string]*file)}
	raw := make(map[string][]byte)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		raw[p] = b
		return nil
	})
	if err != nil {
		return &handler{err: fmt.Errorf("web client not readable: %w", err)}
	}
	for p, b := range raw {
		if isCompressed(p) {
			continue
		}
		f := &file{name: p, ctype: contentType(p), plain: newRepresentation(b, "")}
		for i, e := range encodings {
			if cb, ok := raw[p+e.suffix]; ok {
				r := newRepresentation(cb, e.name)
				f.enc[i] = &r
			}
		}
		h.files[p] = f
	}
	h.index = h.files["index.html"]
	return h
}

func isCompressed(name string) bool {
	for _, e := range encodings {
		if strings.HasSuffix(name, e.suffix) {
			return true
		}
	}
	return false
}

func newRepresentation(b []byte, encoding string) representation {
	sum := sha256.Sum256(b)
	return representation{
		data:     b,
		etag:     `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
		encoding: encoding,
	}
}

// contentType is fixed for the types the client uses, so that it does not depend on the
// machine's mime.types; WebAssembly.instantiateStreaming requires application/wasm.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".wasm":
		return "application/wasm"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// csp allows only the page's own files, its WebSocket and WebAssembly compilation.
const csp = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; " +
	"img-src 'self' data:; media-src 'self' blob:; style-src 'self'; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'none'"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	var f *file
	switch {
	case p == "/" || isSessionPath(p):
		if h.index == nil {
			msg := "web client not built: run make build"
			if h.err != nil {
				msg = h.err.Error()
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		f = h.index
	default:
		f = h.files[strings.TrimPrefix(p, "/")]
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	rep := f.choose(r.Header.Get("Accept-Encoding"))
	hdr := w.Header()
	hdr.Set("Vary", "Accept-Encoding")
	hdr.Set("ETag", rep.etag)
	hdr.Set("Cache-Control", "no-cache")
	if noneMatch(r.Header.Get("If-None-Match"), rep.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("Content-Length", strconv.Itoa(len(rep.data)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	// The session ID in /s/{id} is the key to the call: it must not leak in a Referer.
	hdr.Set("Referrer-Policy", "no-referrer")
	if f == h.index {
		hdr.Set("Content-Security-Policy", csp)
	}
	if rep.encoding != "" {
		hdr.Set("Content-Encoding", rep.encoding)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rep.data)
	}
}

// noneMatch reports whether an If-None-Match header names etag, or is "*" (RFC 9110
// §13.1.2, which compares weakly: a W/ prefix is ignored).
func noneMatch(header, etag string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}

// isSessionPath reports whether p is /s/{id} with a non-empty id of one path segment.
func isSessionPath(p string) bool {
	id, ok := strings.CutPrefix(p, "/s/")
	return ok && id != "" && !strings.Contains(id, "/")
}

// choose picks the stored form the client accepts with the highest q-value; on a tie
// brotli beats gzip beats identity, as brotli is the smallest.
func (f *file) choose(acceptEncoding string) *representation {
	best, bestQ := &f.plain, 0.0
	for i, e := range encodings {
		if f.enc[i] == nil {
			continue
		}
		if q := qValue(acceptEncoding, e.name); q > bestQ {
			best, bestQ = f.enc[i], q
		}
	}
	return best
}

// qValue returns the weight Accept-Encoding gives coding (RFC 9110 §12.5.3): its own entry,
// else "*", else 0. A malformed weight counts as 0.
func qValue(header, coding string) float64 {
	q, star := -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.TrimSpace(name)
		w := 1.0
		for param := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				w = f
			}
		}
		switch {
		case strings.EqualFold(name, coding):
			q = w
		case name == "*":
			star = w
		}
	}
	switch {
	case q >= 0:
		return q
	case star >= 0:
		return star
	}
	return 0
}
