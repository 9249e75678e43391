// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"bufio"
	"fmt"
	"sync"
	"sync/atomic"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/hashicorp/go-hclog"
)

// ResponseWriter is an ldap request response writer which is used by a
// HanderFunc to write responses to client requests.
type ResponseWriter struct {
	writerMu  *sync.Mutex // a shared lock across all requests to prevent data races when writing
	writer    *bufio.Writer
	logger    hclog.Logger
	connID    int
	requestID int

	// noResponse is set for requests that must never be answered (abandon)
	noResponse bool
	// abandoned is set when the request was abandoned (nil outside a conn)
	abandoned *atomic.Bool
	// responded is set, under writerMu and before the bytes are written,
	// when the request's final response (anything but a search entry or
	// reference) is written: the request is no longer outstanding for
	// StartTLS.  upgraded is set when a StartTLS went ahead while the
	// request's handler was still running; Write then refuses, so nothing
	// is written in plaintext after the upgrade.
	responded atomic.Bool
	upgraded  atomic.Bool

	// conn is the connection the writer belongs to (nil outside one): it
	// sets each write's deadline and is ended when a write fails
	conn *conn
}

func newResponseWriter(w *bufio.Writer, lock *sync.Mutex, logger hclog.Logger, connID, requestID int) (*ResponseWriter, error) {
	const op = "gldap.NewResponseWriter"
	if w == nil {
		return nil, fmt.Errorf("%s: missing writer: %w", op, ErrInvalidParameter)
	}
	if lock == nil {
		return nil, fmt.Errorf("%s: missing writer lock: %w", op, ErrInvalidParameter)
	}
	if logger == nil {
		return nil, fmt.Errorf("%s: missing logger: %w", op, ErrInvalidParameter)
	}
	if connID == 0 {
		return nil, fmt.Errorf("%s: missing conn ID: %w", op, ErrInvalidParameter)
	}
	if requestID == 0 {
		return nil, fmt.Errorf("%s: missing request ID: %w", op, ErrInvalidParameter)
	}
	return &ResponseWriter{
		writerMu:  lock,
		writer:    w,
		logger:    logger,
		connID:    connID,
		requestID: requestID,
	}, nil
}

// Write will write the response to the client
func (rw *ResponseWriter) Write(r Response) error {
	const op = "gldap.(ResponseWriter).Write"
	if r == nil {
		return fmt.Errorf("%s: missing response: %w", op, ErrInvalidParameter)
	}
	if rw.noResponse {
		return fmt.Errorf("%s: this request type has no response: %w", op, ErrInvalidState)
	}
	if rw.abandoned != nil && rw.abandoned.Load() {
		return fmt.Errorf("%s: the request was abandoned: %w", op, ErrInvalidState)
	}
	p := r.packet()
	if rw.logger.IsDebug() {
		rw.logger.Debug("response write", "op", op, "conn", rw.connID, "requestID", rw.requestID)
		p.Log(rw.logger.StandardWriter(&hclog.StandardLoggerOptions{}), 0, false)
	}
	rw.writerMu.Lock()
	defer rw.writerMu.Unlock()
	// checked under writerMu, which the conn takes before a StartTLS goes
	// ahead (see conn.startTLSAllowed)
	if rw.upgraded.Load() {
		return fmt.Errorf("%s: the connection was upgraded by StartTLS after the request's response: %w", op, ErrInvalidState)
	}
	switch r.(type) {
	case *SearchResponseEntry, *SearchResponseReference:
	default:
		rw.responded.Store(true)
	}
	if rw.conn != nil {
		rw.conn.setWriteDeadline()
	}
	if _, err := rw.writer.Write(p.Bytes()); err != nil {
		rw.failed(err)
		return fmt.Errorf("%s: unable to write response: %w", op, err)
	}
	if err := rw.writer.Flush(); err != nil {
		rw.failed(err)
		return fmt.Errorf("%s: unable to flush write: %w", op, err)
	}
	rw.logger.Debug("finished writing", "op", op, "conn", rw.connID, "requestID", rw.requestID)
	return nil
}

// failed ends the writer's connection after a failed write.
func (rw *ResponseWriter) failed(err error) {
	if rw.conn != nil {
		rw.conn.writeFailed(err)
	}
}

func beginResponse(messageID int64) *ber.Packet {
	const op = "gldap.beginResponse" // nolint:unused
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, messageID, "MessageID"))
	return p
}

func addOptionalResponseChildren(bindResponse *ber.Packet, opt ...Option) {
	const op = "gldap.addOptionalResponseChildren" // nolint:unused
	opts := getResponseOpts(opt...)
	bindResponse.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, opts.withMatchedDN, "matchedDN"))
	bindResponse.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, opts.withDiagnosticMessage, "diagnosticMessage"))
}

// Response represents a response to an ldap request
type Response interface {
	packet() *packet
}

type baseResponse struct {
	messageID   int64
	code        int16
	diagMessage string
	matchedDN   string

	controls []Control // encoded after the protocolOp as [0] Controls
	referral []string  // LDAPResult referral [3]; only for LDAPResult responses
}

// SetResultCode the result code for a response.
func (l *baseResponse) SetResultCode(code int) {
	l.code = int16(code)
}

// SetDiagnosticMessage sets the optional diagnostic message for a response.
func (l *baseResponse) SetDiagnosticMessage(msg string) {
	l.diagMessage = msg
}

// SetMatchedDN sets the optional matched DN for a response.
func (l *baseResponse) SetMatchedDN(dn string) {
	l.matchedDN = dn
}

// SetControls sets the controls sent with the response (RFC 4511 4.1.11).
// Every response type supports them.
func (l *baseResponse) SetControls(controls ...Control) {
	l.controls = controls
}

// appendLDAPResult appends the LDAPResult components (RFC 4511 4.1.9) to a
// response protocolOp: resultCode, matchedDN, diagnosticMessage and, when set,
// referral [3].
func (l *baseResponse) appendLDAPResult(resultPacket *ber.Packet) {
	resultPacket.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, l.code, ResultCodeMap[uint16(l.code)]))
	addOptionalResponseChildren(resultPacket, WithDiagnosticMessage(l.diagMessage), WithMatchedDN(l.matchedDN))
	if len(l.referral) > 0 {
		referral := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "Referral")
		for _, uri := range l.referral {
			referral.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, uri, "URI"))
		}
		resultPacket.AppendChild(referral)
	}
}

// appendControls appends the response controls, if any, to the LDAPMessage.
func (l *baseResponse) appendControls(replyPacket *ber.Packet) {
	if len(l.controls) > 0 {
		replyPacket.AppendChild(encodeControls(l.controls))
	}
}

// ExtendedResponse represents a response to an extended operation request
type ExtendedResponse struct {
	*baseResponse
	name  ExtendedOperationName
	value []byte
}

// SetResponseName will set the response name for the extended operation
// response, encoded as responseName [10] (omitted when empty).
func (r *ExtendedResponse) SetResponseName(n ExtendedOperationName) {
	r.name = n
}

// SetResponseValue sets the response value for the extended operation
// response, encoded as responseValue [11] when non-nil (an empty, non-nil
// value is encoded as an empty responseValue).
func (r *ExtendedResponse) SetResponseValue(v []byte) {
	r.value = v
}

// SetReferral sets the referral [3] of the response's LDAPResult: the LDAP
// URLs of servers to retry the operation on, used with ResultReferral.
func (r *ExtendedResponse) SetReferral(uris ...string) {
	r.referral = uris
}

func (r *ExtendedResponse) packet() *packet {
	replyPacket := beginResponse(r.messageID)

	resultPacket := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(ApplicationExtendedResponse), nil, ApplicationCodeMap[ApplicationExtendedResponse])
	r.appendLDAPResult(resultPacket)
	if r.name != "" {
		resultPacket.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, string(r.name), "responseName"))
	}
	if r.value != nil {
		resultPacket.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 11, string(r.value), "responseValue"))
	}

	replyPacket.AppendChild(resultPacket)
	r.appendControls(replyPacket)
	return &packet{Packet: replyPacket}
}

// BindResponse represents the response to a bind request
type BindResponse struct {
	*baseResponse
	serverSASLCreds []byte
}

// SetServerSASLCredentials sets the optional serverSaslCreds [7] of the bind
// response (RFC 4511 4.2.2), used by SASL mechanisms that return data to the
// client (e.g. with ResultSaslBindInProgress).  nil omits the field.
func (r *BindResponse) SetServerSASLCredentials(creds []byte) {
	r.serverSASLCreds = creds
}

// SetReferral sets the referral [3] of the response's LDAPResult: the LDAP
// URLs of servers to retry the operation on, used with ResultReferral.
func (r *BindResponse) SetReferral(uris ...string) {
	r.referral = uris
}

func (r *BindResponse) packet() *packet {
	replyPacket := beginResponse(r.messageID)

	resultPacket := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(ApplicationBindResponse), nil, ApplicationCodeMap[ApplicationBindResponse])
	r.appendLDAPResult(resultPacket)
	if r.serverSASLCreds != nil {
		resultPacket.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, string(r.serverSASLCreds), "serverSaslCreds"))
	}

	replyPacket.AppendChild(resultPacket)
	r.appendControls(replyPacket)
	return &packet{Packet: replyPacket}
}

// GeneralResponse represents a general response (non-specific to a request).
type GeneralResponse struct {
	*baseResponse
	applicationCode int
}

// SetReferral sets the referral [3] of the response's LDAPResult: the LDAP
// URLs of servers to retry the operation on, used with ResultReferral.
func (r *GeneralResponse) SetReferral(uris ...string) {
	r.referral = uris
}

func (r *GeneralResponse) packet() *packet {
	const op = "gldap.(GeneralResponse).packet" // nolint:unused
	replyPacket := beginResponse(r.messageID)

	resultPacket := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(r.applicationCode), nil, ApplicationCodeMap[uint8(r.applicationCode)])
	r.appendLDAPResult(resultPacket)

	replyPacket.AppendChild(resultPacket)
	r.appendControls(replyPacket)
	return &packet{Packet: replyPacket}
}

// SearchResponseDone represents that handling a search requests is done.
type SearchResponseDone struct {
	*baseResponse
}

// SetReferral sets the referral [3] of the response's LDAPResult: the LDAP
// URLs of servers to retry the operation on, used with ResultReferral.
func (r *SearchResponseDone) SetReferral(uris ...string) {
	r.referral = uris
}

func (r *SearchResponseDone) packet() *packet {
	const op = "gldap.(SearchDoneResponse).packet" // nolint:unused
	replyPacket := beginResponse(r.messageID)

	resultPacket := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationSearchResultDone, nil, ApplicationCodeMap[ApplicationSearchResultDone])
	r.appendLDAPResult(resultPacket)

	replyPacket.AppendChild(resultPacket)
	r.appendControls(replyPacket)
	return &packet{Packet: replyPacket}
}

// SearchResponseEntry is an ldap entry that's part of search response.
type SearchResponseEntry struct {
	*baseResponse
	entry Entry
}

// AddAttribute will an attributes to the response entry
func (r *SearchResponseEntry) AddAttribute(name string, values []string) {
	r.entry.Attributes = append(r.entry.Attributes, NewEntryAttribute(name, values))
}

func (r *SearchResponseEntry) packet() *packet {
	const op = "gldap.(SearchEntryResponse).packet" // nolint:unused
	replyPacket := beginResponse(r.messageID)

	resultPacket := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationSearchResultEntry, nil, ApplicationCodeMap[ApplicationSearchResultEntry])
	resultPacket.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, r.entry.DN, "DN"))
	attributesPacket := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	for _, a := range r.entry.Attributes {
		attributesPacket.AppendChild(a.encode())
	}
	resultPacket.AppendChild(attributesPacket)

	replyPacket.AppendChild(resultPacket)
	r.appendControls(replyPacket)
	return &packet{Packet: replyPacket}
}

// SearchResponseReference is a search result reference (RFC 4511 4.5.3): it
// tells the client that part of the search must be continued on other
// servers, given as LDAP URLs.
type SearchResponseReference struct {
	*baseResponse
	uris []string
}

func (r *SearchResponseReference) packet() *packet {
	const op = "gldap.(SearchResponseReference).packet" // nolint:unused
	replyPacket := beginResponse(r.messageID)
	// SearchResultReference ::= [APPLICATION 19] SEQUENCE SIZE (1..MAX) OF uri URI
	resultPacket := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationSearchResultReference, nil, ApplicationCodeMap[ApplicationSearchResultReference])
	for _, uri := range r.uris {
		resultPacket.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, uri, "URI"))
	}
	replyPacket.AppendChild(resultPacket)
	r.appendControls(replyPacket)
	return &packet{Packet: replyPacket}
}

// ModifyResponse is a response to a modify request.
type ModifyResponse struct {
	*GeneralResponse
}
