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
	a.entry.WithFields(logrus.Fields(fields)).WithError(err).Error(msg)
}

func (a adapter) Info(msg string, fields watermill.LogFields) {
	a.entry.WithFields(logrus.Fields(fields)).Info(msg)
}

func (a adapter) Debug(msg string, fields watermill.LogFields) {
	a.entry.WithFields(logrus.Fields(fields)).Debug(msg)
}

func (a adapter) Trace(msg string, fields watermill.LogFields) {
	a.entry.WithFields(logrus.Fields(fields)).Trace(msg)
}

func (a adapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return adapter{a.entry.WithFields(logrus.Fields(fields))}
}
