// Package logging sets up logrus and lets Watermill log through it.
package logging

import (
	"io"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/app/config"
)

// New builds the logger the settings describe (they are validated first).
func New(c config.Logging, out io.Writer) (*logrus.Logger, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	level, _ := logrus.ParseLevel(c.Level)
	logger := logrus.New()
	logger.SetOutput(out)
	logger.SetLevel(level)
	if c.Format == "json" {
		logger.SetFormatter(&logrus.JSONFormatter{})
	} else {
		logger.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return logger, nil
}

// Watermill adapts a logrus entry to Watermill's LoggerAdapter, so the router's, the
// subscriber's and the publisher's own logs go through the same logger.
func Watermill(entry *logrus.Entry) watermill.LoggerAdapter { return adapter{entry} }

type adapter struct{ entry *logrus.Entry }

func (a adapter) Error(msg string, err error, fields watermill.LogFields) {
	a.log(logrus.ErrorLevel, msg, err, fields)
}

func (a adapter) Info(msg string, fields watermill.LogFields) {
	a.log(logrus.InfoLevel, msg, nil, fields)
}

func (a adapter) Debug(msg string, fields watermill.LogFields) {
	a.log(logrus.DebugLevel, msg, nil, fields)
}

func (a adapter) Trace(msg string, fields watermill.LogFields) {
	a.log(logrus.TraceLevel, msg, nil, fields)
}

// log checks the level before it copies the fields: the router logs twice at trace level for
// every message, and copying those fields for lines nobody writes was a measurable share of the
// service's CPU (docs/performance.md).
func (a adapter) log(level logrus.Level, msg string, err error, fields watermill.LogFields) {
	if !a.entry.Logger.IsLevelEnabled(level) {
		return
	}
	entry := a.entry.WithFields(logrus.Fields(fields))
	if err != nil {
		entry = entry.WithError(err)
	}
	entry.Log(level, msg)
}

func (a adapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return adapter{a.entry.WithFields(logrus.Fields(fields))}
}
