package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/config"
)

// adminCallTimeout bounds one command over the admin socket.
const adminCallTimeout = 10 * time.Second

// callAdmin sends req to the running ldapgate's admin socket: socket when
// given, else the one configPath's admin.socket names. A refusal comes
// back as an error carrying the server's words, prefixed with the socket.
func callAdmin(ctx context.Context, configPath, socket string, req admin.Request) (admin.Response, error) {
	path := socket
	if path == "" {
		var err error
		if path, err = config.AdminSocket(configPath); err != nil {
			return admin.Response{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	resp, err := admin.Call(ctx, path, req)
	if err != nil && errors.Is(err, admin.ErrRefused) && resp.Error != "" {
		return resp, fmt.Errorf("admin socket %s: %s", path, resp.Error)
	}
	return resp, err
}
