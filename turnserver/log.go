package turnserver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion/turn's logs to slog, all at debug level: what pion/turn reports is
// about single remote clients and packets (a datagram it could not parse, a packet from a
// peer without permission), which any client can cause as often as it likes, while the
// server's own events are logged by this package. Trace output, one line per packet, is
// dropped.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) debug(msg string) { l.log.Debug(msg) }

func (l pionLogger) debugf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (pionLogger) Trace(string)                   {}
func (pionLogger) Tracef(string, ...any)          {}
func (l pionLogger) Debug(msg string)             { l.debug(msg) }
func (l pionLogger) Debugf(f string, args ...any) { l.debugf(f, args...) }
func (l pionLogger) Info(msg string)              { l.debug(msg) }
func (l pionLogger) Infof(f string, args ...any)  { l.debugf(f, args...) }
func (l pionLogger) Warn(msg string)              { l.debug(msg) }
func (l pionLogger) Warnf(f string, args ...any)  { l.debugf(f, args...) }
func (l pionLogger) Error(msg string)             { l.debug(msg) }
func (l pionLogger) Errorf(f string, args ...any) { l.debugf(f, args...) }
