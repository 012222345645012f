//go:build js && wasm

package main

import (
	"sync"
	"syscall/js"
)

// queue holds the client's events. JS callbacks and timers push closures and return at
// once; the loop goroutine runs them one at a time, so the client's state has one owner
// and no callback ever blocks the browser's event loop.
type queue struct {
	mu    sync.Mutex
	items []func()
	wake  chan struct{}
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run runs the events forever, in the order they were pushed.
func (q *queue) run() {
	for range q.wake {
		for {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.mu.Unlock()
				break
			}
			f := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			f()
		}
	}
}

// handlers are the event handlers set on one JS object (a WebSocket, a peer connection,
// a data channel); release unsets and frees them all when that object is done with.
type handlers struct {
	q   *queue
	set []struct {
		target js.Value
		name   string
		fn     js.Func
	}
}

// on sets target[name] (an onX handler) to push f with the event onto the queue.
func (h *handlers) on(target js.Value, name string, f func(ev js.Value)) {
	fn := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ev := js.Undefined()
		if len(args) > 0 {
			ev = args[0]
		}
		h.q.push(func() { f(ev) })
		return nil
	})
	target.Set(name, fn)
	h.set = append(h.set, struct {
		target js.Value
		name   string
		fn     js.Func
	}{target, name, fn})
}

func (h *handlers) release() {
	for _, s := range h.set {
		s.target.Set(s.name, js.Null())
		s.fn.Release()
	}
	h.set = nil
}

// jsError is a JavaScript exception or promise rejection: a DOMException's name (such as
// "NotAllowedError") and message.
type jsError struct{ name, message string }

func (e *jsError) Error() string {
	if e.message == "" {
		return e.name
	}
	return e.name + ": " + e.message
}

func toError(v js.Value) *jsError {
	if v.Type() == js.TypeObject {
		return &jsError{name: v.Get("name").String(), message: v.Get("message").String()}
	}
	return &jsError{name: "Error", message: v.String()}
}

// errorName is the DOMException name of err ("NotAllowedError"), or "".
func errorName(err error) string {
	if e, ok := err.(*jsError); ok {
		return e.name
	}
	return ""
}

// await waits for a promise to settle. It blocks its goroutine, so it must never be called
// from inside a js.FuncOf callback: the browser could not run the promise's reactions.
func await(promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	done := make(chan result, 1)
	arg := func(args []js.Value) js.Value {
		if len(args) == 0 {
			return js.Undefined()
		}
		return args[0]
	}
	onOK := js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{v: arg(args)}
		return nil
	})
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{err: toError(arg(args))}
		return nil
	})
	promise.Call("then", onOK, onErr)
	r := <-done
	onOK.Release()
	onErr.Release()
	return r.v, r.err
}

// call calls a method that returns a promise and awaits it; a method that throws at once
// (a TypeError, say) is an error too.
func call(v js.Value, method string, args ...any) (res js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			jerr, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = toError(jerr.Value)
		}
	}()
	return await(v.Call(method, args...))
}
