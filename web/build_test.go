package web_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parley-rtc/parley/web/webbuild"
)

// pageBudget is the most the whole page (HTML, CSS, JS and WebAssembly) may weigh
// brotli-compressed, in bytes: 1 MB.
const pageBudget = 1_000_000

// The client is built once per test run, into a temporary directory that TestMain removes.
var (
	buildOnce sync.Once
	buildDir  string
	buildRes  webbuild.Result
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// builtClient builds the client from this tree, as `make build` does, and returns the
// directory that holds it.
func builtClient(t *testing.T) (string, webbuild.Result) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "parley-web-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildRes, buildErr = webbuild.Build(ctx, webbuild.Config{Out: buildDir})
	})
	if buildErr != nil {
		t.Fatalf("build the web client: %v", buildErr)
	}
	return buildDir, buildRes
}

func TestPageSize(t *testing.T) {
	_, res := builtClient(t)
	for _, f := range res.Files {
		t.Logf("%-14s %9d bytes, gzip %8d, brotli %8d", f.Name, f.Raw, f.Gzip, f.Brotli)
	}
	total := res.Total()
	t.Logf("%-14s %9d bytes, gzip %8d, brotli %8d", "whole page", total.Raw, total.Gzip, total.Brotli)
	if total.Brotli > pageBudget {
		t.Errorf("the page weighs %d bytes brotli-compressed, over the budget of %d", total.Brotli, pageBudget)
	}
	want := map[string]bool{"index.html": false, "style.css": false, "wasm_exec.js": false, webbuild.WasmName: false}
	for _, f := range res.Files {
		if _, ok := want[f.Name]; ok {
			want[f.Name] = true
		}
		if f.Brotli <= 0 || f.Gzip <= 0 {
			t.Errorf("%s: no compressed copy", f.Name)
		}
	}
	for name, found := range want {
		if !found {
			t.Errorf("the build has no %s", name)
		}
	}
}
