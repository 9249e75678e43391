// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import "fmt"

// BindRequestError describes a bind request that was read and framed
// correctly but that the server can't serve as a bind: a protocol version
// other than 3 (ResultCode ResultProtocolError) or an authentication choice
// other than simple and sasl (ResultCode ResultAuthMethodNotSupported).
//
// Such a request is still a bind (RFC 4511 4.2.1: it resets the
// connection's authentication, even though it fails), so it is routed to the
// Bind route like any other; there Request.GetSimpleBindMessage and
// Request.GetSASLBindMessage both return an error wrapping the
// *BindRequestError.  A handler should answer it with a BindResponse, e.g.
// with ResultCode and Diagnostic.  Without a Bind route the server answers it
// itself with ResultCode and Diagnostic.
type BindRequestError struct {
	// ResultCode is the LDAP result code the request calls for
	ResultCode int
	// Diagnostic is a short diagnosticMessage for the response
	Diagnostic string
	// Err is the underlying error; it wraps ErrInvalidParameter
	Err error
}

// Error implements error.
func (e *BindRequestError) Error() string {
	return fmt.Sprintf("%v (result code %d: %s)", e.Err, e.ResultCode, e.Diagnostic)
}

// Unwrap returns the underlying error.
func (e *BindRequestError) Unwrap() error { return e.Err }

// bindRequestErrorMessage is the Message of a bind request that failed with a
// *BindRequestError (see Request.GetSimpleBindMessage).
type bindRequestErrorMessage struct {
	baseMessage
	err *BindRequestError
}

// response is the BindResponse the read loop sends when there is no Bind
// route.
func (m *bindRequestErrorMessage) response() Response {
	return &BindResponse{
		baseResponse: &baseResponse{
			messageID:   m.id,
			code:        int16(m.err.ResultCode),
			diagMessage: m.err.Diagnostic,
		},
	}
}
