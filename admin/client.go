package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrRefused wraps the server's error text when it answers OK=false.
var ErrRefused = errors.New("ldapgate refused")

// maxResponseSize bounds what Call reads back.
const maxResponseSize = 16 << 20

// Call sends one request to the admin socket at path and returns the answer.
// It gives up when ctx is done or its deadline passes. A request the server
// refuses returns the Response and an error wrapping ErrRefused; a socket
// that is missing or not listened on returns an error that says so.
func Call(ctx context.Context, path string, req Request) (Response, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if len(b) >= MaxRequestSize {
		return Response{}, fmt.Errorf("request is %d bytes; the admin socket accepts at most %d", len(b), MaxRequestSize)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, dialError(path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	_, werr := c.Write(append(b, '\n'))
	// Even if the write failed, the server may have answered before closing
	// (it refuses a peer it does not serve without reading), so read anyway.
	line, err := bufio.NewReader(io.LimitReader(c, maxResponseSize)).ReadBytes('\n')
	if err != nil {
		if werr != nil {
			return Response{}, callError(ctx, path, "sending request", werr)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Response{}, callError(ctx, path, "reading response", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("reading response: %w", err)
	}
	if !resp.OK {
		return resp, fmt.Errorf("%w: %s", ErrRefused, resp.Error)
	}
	return resp, nil
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the admin socket (is ldapgate running? admin.socket is %s): %w", path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("admin socket %s: only root or the user ldapgate runs as may use it: %w", path, err)
	}
	return fmt.Errorf("admin socket %s: %w", path, err)
}

// callError reports a failure mid-call; when ctx ended it, ctx's reason is
// what the caller wants (the connection deadline can fire a moment before
// ctx notices its own).
//
// A *net.OpError is unwrapped: the address it names is the name the server
// bound before moving the socket into place, which no longer exists.
func callError(ctx context.Context, path, step string, err error) error {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	} else if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		err = context.DeadlineExceeded
	} else if op, ok := errors.AsType[*net.OpError](err); ok {
		err = op.Err
	}
	return fmt.Errorf("admin socket %s: %s: %w", path, step, err)
}
