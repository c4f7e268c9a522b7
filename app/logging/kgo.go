package logging

import (
	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kgo lets franz-go log through logrus, for the service and the operator tools. Everything the
// client says goes out at debug level, with its own level as a field: at the default level the
// output holds the program's own lines only (the service explains a failing fetch or publish
// itself), and LOG_LEVEL=debug shows the connections, retries and group joins behind them.
func Kgo(logger *logrus.Logger) kgo.Logger { return kgoAdapter{logger} }

type kgoAdapter struct{ logger *logrus.Logger }

func (a kgoAdapter) Level() kgo.LogLevel {
	if a.logger.IsLevelEnabled(logrus.DebugLevel) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelNone
}

func (a kgoAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	fields := logrus.Fields{"component": "franz-go", "franz_level": level.String()}
	for i := 0; i+1 < len(keyvals); i += 2 {
		if key, ok := keyvals[i].(string); ok {
			fields[key] = keyvals[i+1]
		}
	}
	a.logger.WithFields(fields).Debug(msg)
}
