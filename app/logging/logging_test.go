package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/logging"
)

func jsonLogger(t *testing.T, level string) (*logrus.Logger, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	logger, err := logging.New(config.Logging{Level: level, Format: "json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	return logger, &out
}

func TestWatermillAdapterWritesEnabledLevelsWithTheirFields(t *testing.T) {
	logger, out := jsonLogger(t, "debug")
	wm := logging.Watermill(logrus.NewEntry(logger)).With(watermill.LogFields{"handler_name": "pingpong"})

	wm.Trace("not written", watermill.LogFields{"message_uuid": "a"})
	wm.Debug("debug line", watermill.LogFields{"message_uuid": "b"})
	wm.Info("info line", nil)
	wm.Error("error line", errors.New("broker gone"), watermill.LogFields{"topic": "t"})

	var lines []map[string]any
	for _, raw := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var line map[string]any
		if err := json.Unmarshal(raw, &line); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		lines = append(lines, line)
	}
	if len(lines) != 3 {
		t.Fatalf("want the debug, info and error lines, got %d: %s", len(lines), out)
	}
	want := []map[string]any{
		{"level": "debug", "msg": "debug line", "handler_name": "pingpong", "message_uuid": "b"},
		{"level": "info", "msg": "info line", "handler_name": "pingpong"},
		{"level": "error", "msg": "error line", "handler_name": "pingpong", "topic": "t", "error": "broker gone"},
	}
	for i, fields := range want {
		for k, v := range fields {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}
}

// The router logs at trace level twice for every message; at the default level those calls must
// cost nothing.
func TestWatermillAdapterAllocatesNothingForDisabledLevels(t *testing.T) {
	logger, out := jsonLogger(t, "info")
	wm := logging.Watermill(logrus.NewEntry(logger))
	fields := watermill.LogFields{"message_uuid": "a", "handler_name": "pingpong"}
	allocs := testing.AllocsPerRun(100, func() {
		wm.Trace("Received message", fields)
		wm.Debug("Message acked", fields)
	})
	if allocs != 0 {
		t.Errorf("trace and debug at level info allocated %v times per call pair, want 0", allocs)
	}
	if out.Len() != 0 {
		t.Errorf("disabled levels wrote: %s", out)
	}
}
