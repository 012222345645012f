// Package bidi is a minimal WebDriver BiDi client, for the tests that drive Firefox: it
// sends commands and waits for their responses, and hands events to a callback. It exists
// because Firefox speaks WebDriver BiDi (not the Chrome DevTools Protocol chromedp speaks),
// there is no geckodriver here, and there is no Go BiDi library to depend on; the tests
// need only a few commands, which Client.Call sends with their parameters as the spec
// defines them.
//
// Spec: W3C WebDriver BiDi, https://w3c.github.io/webdriver-bidi/ (#transport: one JSON
// message per WebSocket text frame; #protocol-definition: commands, results, errors and
// events; #handle-an-incoming-message).
package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// ErrClosed is returned by Call once the connection is closed or lost.
var ErrClosed = errors.New("bidi: connection closed")

// Error is the error a remote end answered a command with (#protocol-definition,
// ErrorResponse; the codes are listed in #errors: "invalid argument", "no such frame", …).
type Error struct {
	Method  string
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("bidi %s: %s: %s", e.Method, e.Code, e.Message) }

// Client is one WebDriver BiDi connection. Its methods may be called from any goroutine.
type Client struct {
	conn    *websocket.Conn
	onEvent func(method string, params json.RawMessage)

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan message
	err     error // why the connection ended; set once, before done closes

	done chan struct{} // closed when the read loop ends
}

// message is any message from the remote end (#protocol-definition: CommandResponse,
// ErrorResponse, Event).
type message struct {
	Type    string          `json:"type"` // "success", "error" or "event"
	ID      *uint64         `json:"id"`   // of the command answered; null in some errors
	Result  json.RawMessage `json:"result"`
	Method  string          `json:"method"` // of an event
	Params  json.RawMessage `json:"params"` // of an event
	Code    string          `json:"error"`
	Message string          `json:"message"`
}

// Options configure Dial.
type Options struct {
	// Dial makes the TCP connection, if set: to reach a remote end listening in another
	// network namespace, for one.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OnEvent is called, on the client's read goroutine, with each event's method
	// ("log.entryAdded") and parameters. It must not call the Client's methods.
	OnEvent func(method string, params json.RawMessage)
}

// Dial connects to a remote end's WebSocket URL: ws://HOST:PORT/session for a new session
// (#establishing-a-connection).
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	var hc *http.Client
	if o.Dial != nil {
		hc = &http.Client{Transport: &http.Transport{DialContext: o.Dial}}
	}
	// No Origin header: Firefox refuses WebSocket upgrades from origins it was not told to
	// allow (--remote-allow-origins), and coder/websocket sends none unless asked.
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("bidi: dial %s: %w", url, err)
	}
	conn.SetReadLimit(64 << 20) // results carry whole page values and screenshots
	c := &Client{conn: conn, onEvent: o.OnEvent, pending: map[uint64]chan message{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *Client) read() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
			return
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			c.fail(fmt.Errorf("bidi: malformed message %.200q: %w", b, err))
			c.conn.CloseNow()
			return
		}
		switch {
		case m.Type == "event":
			if c.onEvent != nil {
				c.onEvent(m.Method, m.Params)
			}
		case m.ID != nil:
			c.mu.Lock()
			ch := c.pending[*m.ID]
			delete(c.pending, *m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		default:
			// An error about a message the remote end could not parse at all (no id):
			// the command that sent it will time out with its context.
		}
	}
}

// fail records why the connection ended, and ends every call waiting for a response.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

// Call sends the command method with params (marshalled to JSON; nil sends {}) and waits
// for its response, whose result it unmarshals into result if that is not nil. An error
// response is an *Error.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("bidi %s: %w", method, err)
	}
	c.nextID++
	id := c.nextID
	ch := make(chan message, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	b, err := json.Marshal(struct {
		ID     uint64 `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params"`
	}{id, method, params})
	if err != nil {
		forget()
		return fmt.Errorf("bidi %s: params: %w", method, err)
	}
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		forget()
		return fmt.Errorf("bidi %s: send: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return fmt.Errorf("bidi %s: %w", method, err)
		}
		if m.Type == "error" {
			return &Error{Method: method, Code: m.Code, Message: m.Message}
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("bidi %s: result %.200q: %w", method, m.Result, err)
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("bidi %s: %w", method, ctx.Err())
	}
}

// Close closes the connection and waits for the read goroutine to end.
func (c *Client) Close() error {
	err := c.conn.CloseNow()
	<-c.done
	return err
}
