package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeRemote is a remote end that answers each command with what answer returns for it
// (nil: no answer), after sending an event.
func fakeRemote(t *testing.T, answer func(id uint64, method string, params json.RawMessage) any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := r.Context()
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var cmd struct {
				ID     uint64          `json:"id"`
				Method string          `json:"method"`
				Params json.RawMessage `json:"params"`
			}
			if err := json.Unmarshal(b, &cmd); err != nil {
				t.Errorf("command %q: %v", b, err)
				return
			}
			ev := `{"type":"event","method":"log.entryAdded","params":{"text":"` + cmd.Method + `"}}`
			if conn.Write(ctx, websocket.MessageText, []byte(ev)) != nil {
				return
			}
			a := answer(cmd.ID, cmd.Method, cmd.Params)
			if a == nil {
				continue
			}
			out, _ := json.Marshal(a)
			if conn.Write(ctx, websocket.MessageText, out) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/session"
}

func TestCall(t *testing.T) {
	url := fakeRemote(t, func(id uint64, method string, params json.RawMessage) any {
		switch method {
		case "browsingContext.getTree":
			return map[string]any{"type": "success", "id": id, "result": map[string]any{
				"contexts": []any{map[string]any{"context": "ctx-1", "url": "about:blank"}}}}
		case "script.evaluate":
			var p struct {
				Expression   string `json:"expression"`
				AwaitPromise bool   `json:"awaitPromise"`
			}
			json.Unmarshal(params, &p)
			if !p.AwaitPromise || !strings.Contains(p.Expression, "JSON.stringify") {
				t.Errorf("script.evaluate params %s", params)
			}
			if strings.Contains(p.Expression, "throw") {
				return map[string]any{"type": "success", "id": id, "result": map[string]any{
					"type": "exception", "exceptionDetails": map[string]any{"text": "Error: boom"}}}
			}
			return map[string]any{"type": "success", "id": id, "result": map[string]any{
				"type": "success", "result": map[string]any{"type": "string", "value": `{"n":42}`}}}
		case "silent":
			return nil
		}
		return map[string]any{"type": "error", "id": id, "error": "unknown command", "message": method}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := make(chan string, 16)
	c, err := Dial(ctx, url, Options{OnEvent: func(method string, params json.RawMessage) {
		events <- method + " " + string(params)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	id, err := c.TopContext(ctx)
	if err != nil || id != "ctx-1" {
		t.Errorf("TopContext = %q, %v; want ctx-1", id, err)
	}
	if got := <-events; got != `log.entryAdded {"text":"browsingContext.getTree"}` {
		t.Errorf("event %s", got)
	}
	var v struct{ N int }
	if err := c.Evaluate(ctx, "ctx-1", "Promise.resolve({n: 42})", &v); err != nil || v.N != 42 {
		t.Errorf("Evaluate = %+v, %v; want n 42", v, err)
	}
	var ee *EvaluateError
	if err := c.Evaluate(ctx, "ctx-1", "(() => { throw new Error('boom') })()", nil); !errors.As(err, &ee) || ee.Text != "Error: boom" {
		t.Errorf("Evaluate of a throw: %v, want an EvaluateError", err)
	}
	var be *Error
	if err := c.Call(ctx, "nope.nope", nil, nil); !errors.As(err, &be) || be.Code != "unknown command" {
		t.Errorf("Call of an unknown command: %v, want an *Error", err)
	}

	// A command without an answer ends with its context, and the connection stays usable.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if err := c.Call(short, "silent", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered Call: %v, want a deadline error", err)
	}
	if _, err := c.TopContext(ctx); err != nil {
		t.Errorf("after a timed-out command: %v", err)
	}
}

// TestClosed: a call waiting when the connection drops ends with ErrClosed, as do later
// ones.
func TestClosed(t *testing.T) {
	drop := make(chan struct{})
	url := fakeRemote(t, func(id uint64, method string, params json.RawMessage) any {
		close(drop)
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-drop
		c.conn.CloseNow()
	}()
	if err := c.Call(ctx, "session.end", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call on a dropped connection: %v, want ErrClosed", err)
	}
	if err := c.Call(ctx, "session.end", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after the drop: %v, want ErrClosed", err)
	}
	c.Close()
}
