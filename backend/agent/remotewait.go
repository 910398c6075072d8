package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
)

// RemoteForwardFailure waits, after a connection, until the server has
// answered every remote forward of l, and returns an error naming the
// first one it refused ("-R 9000:localhost:3000: the server refused …"),
// nil when all listen: ssh's ExitOnForwardFailure for -R. A port still
// busy on the server after wait (which a stale session of an earlier
// connection may hold for a moment) counts as refused; so does a forward
// still unanswered then.
func RemoteForwardFailure(ctx context.Context, l Login, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		st, err := l.Stats(ctx)
		if err != nil {
			return err
		}
		var pending *ForwardInfo
		for i, f := range st.Forwards {
			if f.Kind != ForwardRemote || f.Remote == nil || f.Remote.State == forwarder.RemoteListening {
				continue
			}
			if f.Remote.State == forwarder.RemoteRefused {
				return remoteFailure(f)
			}
			if pending == nil {
				pending = &st.Forwards[i]
			}
		}
		if pending == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return remoteFailure(*pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func remoteFailure(f ForwardInfo) error {
	reason := f.Remote.Reason
	if reason == "" {
		reason = "not listening on the server (" + f.Remote.State.String() + ")"
	}
	return fmt.Errorf("-R %s: %s", f.Remote.Spec, reason)
}
