package desktop

import (
	"fmt"
	"strings"
	"sync"

	"github.com/porthole-app/porthole/backend/events"
)

// RequestKind is what a request asks the window to do.
type RequestKind int

const (
	RequestShow      RequestKind = iota // just show the window
	RequestOpenURL                      // open URL on ServerID, or ask which server ("" ServerID)
	RequestAddServer                    // open the add-server form, filled in (User, Host, Port)
	RequestFocusTab                     // show the app tab TabID
	RequestMessage                      // say Message
	RequestSettings                     // open Settings
)

var requestNames = [...]string{RequestShow: "show", RequestOpenURL: "open-url", RequestAddServer: "add-server", RequestFocusTab: "focus-tab", RequestMessage: "message", RequestSettings: "settings"}

func (k RequestKind) String() string {
	if int(k) >= 0 && int(k) < len(requestNames) {
		return requestNames[k]
	}
	return fmt.Sprintf("RequestKind(%d)", int(k))
}

// MarshalText makes a RequestKind appear as its name in JSON.
func (k RequestKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// DesktopRequest is the `desktop.request` event: something a launch or the
// tray asks the window to do. Seq grows by one per request, so that the
// window acts on each once (the bus replays the latest to a reloaded page).
type DesktopRequest struct {
	Seq      int         `json:"seq"`
	Kind     RequestKind `json:"kind"`
	URL      string      `json:"url,omitempty"`
	ServerID string      `json:"serverId,omitempty"`
	User     string      `json:"user,omitempty"`
	Host     string      `json:"host,omitempty"`
	Port     int         `json:"port,omitempty"`
	TabID    string      `json:"tabId,omitempty"`
	Message  string      `json:"message,omitempty"`
}

// TopicRequests carries the window's requests.
var TopicRequests = events.NewTopic[DesktopRequest]("desktop.request")

// ServerRef is a saved server as a launch's --server may name it.
type ServerRef struct{ ID, Name string }

// RequestFor turns a launch into the window's request; --server matches a
// server's id, or its name (case-insensitively).
func RequestFor(l Launch, servers []ServerRef) DesktopRequest {
	switch l.Target.Kind {
	case TargetAppURL:
		r := DesktopRequest{Kind: RequestOpenURL, URL: l.Target.URL}
		if l.Server != "" {
			for _, s := range servers {
				if s.ID == l.Server || strings.EqualFold(s.Name, l.Server) {
					r.ServerID = s.ID
					return r
				}
			}
			return DesktopRequest{Kind: RequestMessage, Message: fmt.Sprintf("Porthole has no server named %q; the URL was not opened. Add the server, or leave out --server to choose one.", l.Server)}
		}
		return r
	case TargetSSH:
		return DesktopRequest{Kind: RequestAddServer, User: l.Target.User, Host: l.Target.Host, Port: l.Target.Port}
	}
	return DesktopRequest{Kind: RequestShow}
}

// Requests publishes the window's requests, numbered.
type Requests struct {
	bus *events.Bus
	mu  sync.Mutex
	seq int
}

// NewRequests publishes on bus.
func NewRequests(bus *events.Bus) *Requests { return &Requests{bus: bus} }

// Send numbers r and publishes it; it returns the number.
func (q *Requests) Send(r DesktopRequest) int {
	q.mu.Lock()
	q.seq++
	r.Seq = q.seq
	q.mu.Unlock()
	events.Publish(q.bus, TopicRequests, r)
	return r.Seq
}
