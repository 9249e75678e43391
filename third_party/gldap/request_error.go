// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import "fmt"

// requestError is returned while reading a request that can't be served but
// that the protocol lets the server answer with an LDAPResult, keeping the
// connection open (e.g. a bind with an unsupported protocol version).  The
// read loop writes the response itself; no handler is called.
type requestError struct {
	messageID       int64
	applicationCode int
	resultCode      int
	diagnostic      string
	err             error
}

func (e *requestError) Error() string {
	return fmt.Sprintf("%s (answered with result code %d)", e.err, e.resultCode)
}

func (e *requestError) Unwrap() error { return e.err }

// response builds the response the read loop sends for the request.
func (e *requestError) response() Response {
	return &GeneralResponse{
		baseResponse: &baseResponse{
			messageID:   e.messageID,
			code:        int16(e.resultCode),
			diagMessage: e.diagnostic,
		},
		applicationCode: e.applicationCode,
	}
}
