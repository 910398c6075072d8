package ui

import (
	"errors"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/servers"
)

// HTTPStatus is the one place that turns the rooms' errors into HTTP
// statuses for `porthole serve`'s API (POST /api/<Method>); the desktop
// window ignores them. 0 means "not ours": webui then answers 500.
func HTTPStatus(err error) int {
	var ve *profiles.ValidationError
	var ce *servers.ConnectError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		// 502 when the server could not be reached, 400 for an unusable
		// configuration, 409 for everything the user can answer
		// differently (password, host key, canceled).
		switch ce.Server.Kind {
		case servers.ErrorUnreachable, servers.ErrorTimeout, servers.ErrorConnectionLost, servers.ErrorOther:
			return 502
		case servers.ErrorConfig:
			return 400
		}
		return 409
	case errors.Is(err, apperr.ErrBadInput), errors.As(err, &ve):
		return 400
	case errors.Is(err, apperr.ErrNotFound), errors.Is(err, profiles.ErrNotFound):
		return 404
	case errors.Is(err, apperr.ErrConflict), errors.Is(err, profiles.ErrReadOnly), errors.Is(err, profiles.ErrLocked):
		return 409
	case errors.Is(err, apperr.ErrUnreachable):
		return 502
	case errors.Is(err, apperr.ErrUnavailable):
		return 503
	}
	return 0
}
