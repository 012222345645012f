// Package webbuild builds Parley's browser client into a directory that web.Handler serves:
// web/client compiled to WebAssembly, wasm_exec.js from the same Go toolchain, the files of
// web/static, and a brotli (.br) and gzip (.gz) copy beside each.
package webbuild

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

// ClientPackage is the import path of the browser client, built with GOOS=js GOARCH=wasm.
const ClientPackage = "github.com/parley-rtc/parley/web/client"

// WasmName is the name of the built client in the output directory; web/static/index.html
// loads it.
const WasmName = "parley.wasm"

// Config says where to build. Its zero value builds into ./dist with the go command on
// PATH, from the module around the current directory.
type Config struct {
	// Out is the directory to write into; it is created if missing. "" means "dist".
	Out string
	// Go is the go command; "" means "go". The client is compiled with it and wasm_exec.js
	// is taken from its GOROOT, so that the two always match.
	Go string
	// ModuleDir is the root of the parley module, which holds web/static; "" means the
	// module that `go env GOMOD` reports for the current directory.
	ModuleDir string
}

// File is one file written, with its sizes in bytes as is and compressed.
type File struct {
	Name              string
	Raw, Gzip, Brotli int
}

// Result lists what Build wrote.
type Result struct {
	Files []File
}

// Total adds up the sizes of the files: everything a browser loads to show the page.
func (r Result) Total() File {
	t := File{Name: "total"}
	for _, f := range r.Files {
		t.Raw += f.Raw
		t.Gzip += f.Gzip
		t.Brotli += f.Brotli
	}
	return t
}

// Build compiles and copies the client into cfg.Out. It runs `go build`, so it needs the
// module's source and the Go toolchain; ctx bounds the compile.
func Build(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Out == "" {
		cfg.Out = "dist"
	}
	if cfg.Go == "" {
		cfg.Go = "go"
	}
	if cfg.ModuleDir == "" {
		gomod, err := goEnv(ctx, cfg.Go, "", "GOMOD")
		if err != nil {
			return Result{}, err
		}
		if gomod == "" || gomod == os.DevNull {
			return Result{}, errors.New("webbuild: not inside a Go module; run it from the parley module or set ModuleDir")
		}
		cfg.ModuleDir = filepath.Dir(gomod)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return Result{}, fmt.Errorf("webbuild: %w", err)
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return Result{}, fmt.Errorf("webbuild: %w", err)
	}

	names, err := compile(ctx, cfg, out)
	if err != nil {
		return Result{}, err
	}
	static := filepath.Join(cfg.ModuleDir, "web", "static")
	entries, err := os.ReadDir(static)
	if err != nil {
		return Result{}, fmt.Errorf("webbuild: static files: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := copyFile(filepath.Join(static, e.Name()), filepath.Join(out, e.Name())); err != nil {
			return Result{}, err
		}
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return compressAll(out, names)
}

// compile builds the client and copies the matching wasm_exec.js; it returns their names.
func compile(ctx context.Context, cfg Config, out string) ([]string, error) {
	goroot, err := goEnv(ctx, cfg.Go, cfg.ModuleDir, "GOROOT")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, cfg.Go, "build", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(out, WasmName), ClientPackage)
	cmd.Dir = cfg.ModuleDir
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("webbuild: compile %s for js/wasm: %w\n%s", ClientPackage, err, msg)
	}
	// Go 1.24 moved wasm_exec.js from misc/wasm to lib/wasm.
	var execJS string
	for _, dir := range []string{"lib", "misc"} {
		p := filepath.Join(goroot, dir, "wasm", "wasm_exec.js")
		if _, err := os.Stat(p); err == nil {
			execJS = p
			break
		}
	}
	if execJS == "" {
		return nil, fmt.Errorf("webbuild: no wasm_exec.js in GOROOT %s (lib/wasm or misc/wasm)", goroot)
	}
	if err := copyFile(execJS, filepath.Join(out, "wasm_exec.js")); err != nil {
		return nil, err
	}
	return []string{WasmName, "wasm_exec.js"}, nil
}

func goEnv(ctx context.Context, goCmd, dir, name string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "env", name)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("webbuild: go env %s: %w\n%s", name, err, stderr.Bytes())
	}
	return strings.TrimSpace(string(b)), nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("webbuild: %w", err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		return fmt.Errorf("webbuild: %w", err)
	}
	return nil
}

// compressAll writes name.br and name.gz beside each file, at the best compression each
// format has; the work runs in parallel, as brotli's best level takes seconds on the wasm.
func compressAll(dir string, names []string) (Result, error) {
	res := Result{Files: make([]File, len(names))}
	errs := make([]error, 2*len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return Result{}, fmt.Errorf("webbuild: %w", err)
		}
		f := &res.Files[i]
		*f = File{Name: name, Raw: len(data)}
		wg.Go(func() {
			f.Brotli, errs[2*i] = writeCompressed(filepath.Join(dir, name+".br"), data, newBrotli)
		})
		wg.Go(func() {
			f.Gzip, errs[2*i+1] = writeCompressed(filepath.Join(dir, name+".gz"), data, newGzip)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	return res, nil
}

func newBrotli(w io.Writer) io.WriteCloser {
	// Quality 11 is brotli's best; a 16 MiB window (24 bits) is the most browsers accept.
	return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: brotli.BestCompression, LGWin: 24})
}

func newGzip(w io.Writer) io.WriteCloser {
	zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression) // a valid level: no error
	return zw
}

func writeCompressed(path string, data []byte, newWriter func(io.Writer) io.WriteCloser) (int, error) {
	var buf bytes.Buffer
	zw := newWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return 0, fmt.Errorf("webbuild: compress %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("webbuild: compress %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return 0, fmt.Errorf("webbuild: %w", err)
	}
	return buf.Len(), nil
}
