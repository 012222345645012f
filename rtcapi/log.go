package rtcapi

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// LevelTrace is the slog level of Pion's trace logs, below slog.LevelDebug: a handler at
// debug level leaves them out, as Pion's own logger does unless asked (PION_LOG_TRACE).
const LevelTrace = slog.LevelDebug - 4

// logFactory is a pion/logging.LoggerFactory that hands Pion's logs to a slog.Logger, each
// with the attribute pion=<scope> (ice, dtls, pc, twcc_sender_interceptor, ...), so that
// they follow the program's own handler, format and level. Pion's errors are errors, its
// warnings and information debug detail, as Pion's own logger shows only its errors
// unless asked (PION_LOG_WARN, ...): it warns of what is ordinary in a call, such as
// connectivity checks before the first remote candidate.
type logFactory struct{ l *slog.Logger }

func (f logFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLog{f.l.With("pion", scope)}
}

// pionLog is one scope's logger. A line a level leaves out is not formatted.
type pionLog struct{ l *slog.Logger }

func (p pionLog) log(level slog.Level, msg string) {
	p.l.Log(context.Background(), level, msg)
}

func (p pionLog) logf(level slog.Level, format string, args ...any) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (p pionLog) Trace(msg string)                  { p.log(LevelTrace, msg) }
func (p pionLog) Tracef(format string, args ...any) { p.logf(LevelTrace, format, args...) }
func (p pionLog) Debug(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLog) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLog) Info(msg string)                   { p.log(slog.LevelDebug, msg) }
func (p pionLog) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLog) Warn(msg string)                   { p.log(slog.LevelDebug, msg) }
func (p pionLog) Warnf(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLog) Error(msg string)                  { p.log(slog.LevelError, msg) }
func (p pionLog) Errorf(format string, args ...any) { p.logf(slog.LevelError, format, args...) }
