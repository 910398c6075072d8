package forwarder

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// forwardedStreamlocal is the channel type of connections to a remote Unix
// socket forward.
const forwardedStreamlocal = "forwarded-streamlocal@openssh.com"

// serveConnUnix requests a Unix socket forward (streamlocal-forward@openssh.com)
// on connection gen and keeps it until the connection ends or the forward
// is closed; a refusal is explained (one read-only look at the path) and
// asked again with backoff.
//
// When the path exists on the server, sshd binds over it only with
// StreamLocalBindUnlink yes; Porthole never removes it (it writes nothing on
// the server), so the forward waits, saying so, and asks again.
func (f *RemoteForward) serveConnUnix(c SSHClient, rc remoteClient, conn *muxConn, gen uint64, dead <-chan struct{}) {
	path := f.spec.BindPath
	if !conn.unix {
		f.setState(RemoteRefused, fmt.Sprintf("%v: something else handles its %s channels", ErrRemoteUnsupported, forwardedStreamlocal), 0)
		f.wait(dead)
		return
	}
	failures := 0
	for {
		f.setState(RemoteRequesting, "asking the server to listen on "+f.spec.listenName(0), 0)
		ok, _, err := f.sendGlobal(c, gen, dead, "streamlocal-forward@openssh.com", streamlocalPayload(path))
		if err != nil {
			if f.ctx.Err() == nil {
				f.log.Debug("streamlocal-forward request failed", "err", err)
			}
			f.wait(dead)
			return
		}
		if ok {
			conn.addPath(f, path)
			f.setState(RemoteListening, "listening on "+f.spec.listenName(0)+" on the server", 0)
			f.wait(dead)
			conn.remove(f)
			if f.ctx.Err() != nil {
				f.cancelUnix(rc, dead)
			}
			return
		}
		failures++
		state, reason := f.diagnoseUnix(c, dead)
		if f.ctx.Err() != nil {
			return
		}
		f.setState(state, reason, 0)
		t := time.NewTimer(f.opts.Retry.Delay(failures, nil))
		select {
		case <-t.C:
		case <-dead:
			t.Stop()
			return
		case <-f.ctx.Done():
			t.Stop()
			return
		}
	}
}

// diagnoseUnix says why the server refused to listen on the socket path.
func (f *RemoteForward) diagnoseUnix(c SSHClient, dead <-chan struct{}) (RemoteState, string) {
	path := f.spec.BindPath
	policy := fmt.Sprintf("the server refused to listen on Unix socket %s: its sshd_config has AllowStreamLocalForwarding no (or local) or DisableForwarding yes", path)
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	out, err := f.s.runScript(ctx, c, dead, shellCommand(bindCheckScript, shQuoteArg(path)))
	if err != nil {
		if f.ctx.Err() == nil {
			f.log.Debug("could not look at the socket path on the server", "err", err)
		}
		return RemoteRefused, policy + ", or the path is taken or not writable"
	}
	switch strings.TrimSpace(string(out)) {
	case "sock":
		return RemoteWaitingPort, fmt.Sprintf("Unix socket %s already exists on the server (left by an earlier connection?): sshd replaces it only with StreamLocalBindUnlink yes in its sshd_config, and Porthole never deletes files on the server; remove it there (rm %s) or set StreamLocalBindUnlink yes; retrying", path, path)
	case "file":
		return RemoteRefused, fmt.Sprintf("%s exists on the server and is not a socket; choose another path", path)
	case "nodir":
		return RemoteRefused, fmt.Sprintf("the directory of %s does not exist on the server", path)
	case "nowrite":
		return RemoteRefused, fmt.Sprintf("the login user may not create %s on the server (its directory is not writable)", path)
	}
	return RemoteRefused, policy
}

// cancelUnix asks the server to stop listening on the socket (best effort,
// bounded). sshd leaves the socket file behind.
func (f *RemoteForward) cancelUnix(rc remoteClient, dead <-chan struct{}) {
	f.sendCancel(rc, dead, "cancel-streamlocal-forward@openssh.com", streamlocalPayload(f.spec.BindPath))
}

func (mc *muxConn) addPath(f *RemoteForward, path string) {
	mc.mu.Lock()
	mc.routes[f] = route{path: path}
	mc.mu.Unlock()
}

// dispatchUnix hands a forwarded-streamlocal channel to the forward
// listening on its path, or rejects it.
func (mc *muxConn) dispatchUnix(nc ssh.NewChannel) {
	path, err := parseStreamlocalOpen(nc.ExtraData())
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	mc.mu.Lock()
	var match *RemoteForward
	for f, r := range mc.routes {
		if r.path != "" && r.path == path {
			match = f
			break
		}
	}
	mc.mu.Unlock()
	if match == nil {
		_ = nc.Reject(ssh.Prohibited, "no forward for this socket")
		return
	}
	match.serve(nc, path)
}
