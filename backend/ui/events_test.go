package ui

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/events"
)

// TestFrontendEventTypesMatchGo: the frontend's topic → payload map
// (frontend/src/api/events.ts, EventPayloads) names exactly the topics the Go
// rooms register, each with the Go payload type's name, so that an event's
// topic gives its type on both sides and no `as` cast is needed.
func TestFrontendEventTypesMatchGo(t *testing.T) {
	src, err := os.ReadFile("../../frontend/src/api/events.ts")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	i := strings.Index(body, "export interface EventPayloads {")
	if i < 0 {
		t.Fatal("events.ts has no `export interface EventPayloads {`")
	}
	j := strings.Index(body[i:], "\n}")
	line := regexp.MustCompile(`^\s*'([a-z.]+)':\s*([A-Za-z]+(?:\[\])?),`)
	ts := map[string]string{}
	for _, l := range strings.Split(body[i:i+j], "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			ts[m[1]] = m[2]
		}
	}
	goTopics := events.Topics()
	if len(goTopics) == 0 {
		t.Fatal("no Go topics registered")
	}
	for _, g := range goTopics {
		got, ok := ts[g.Name]
		switch {
		case !ok:
			t.Errorf("topic %q (Go payload %s) is missing from EventPayloads in frontend/src/api/events.ts", g.Name, g.Payload)
		case got != g.Payload:
			t.Errorf("topic %q: the frontend says %s, Go publishes %s", g.Name, got, g.Payload)
		}
		delete(ts, g.Name)
	}
	for name := range ts {
		t.Errorf("the frontend expects topic %q, which no Go room publishes", name)
	}
}
