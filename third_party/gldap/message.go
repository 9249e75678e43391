// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"fmt"
)

// Scope represents the scope of a search (see: https://ldap.com/the-ldap-search-operation/)
type Scope int64

const (
	// BaseObject (often referred to as “base”): Indicates that only the entry
	// specified as the search base should be considered. None of its
	// subordinates will be considered.
	BaseObject Scope = 0

	// SingleLevel (often referred to as “one”): Indicates that only the
	// immediate children of the entry specified as the search base should be
	// considered. The base entry itself should not be considered, nor any
	// descendants of the immediate children of the base entry.
	SingleLevel Scope = 1

	// WholeSubtree (often referred to as “sub”): Indicates that the entry
	// specified as the search base, and all of its subordinates to any depth,
	// should be considered. Note that in the special case that the search base
	// DN is the null DN, the root DSE should not be considered in a
	// wholeSubtree search.
	WholeSubtree Scope = 2
)

// AuthChoice defines the authentication choice for bind message
type AuthChoice string

// SimpleAuthChoice specifies a simple user/password authentication choice for
// the bind message
const SimpleAuthChoice AuthChoice = "simple"

// SASLAuthChoice specifies a SASL authentication choice for the bind message
// (see SASLBindMessage)
const SASLAuthChoice AuthChoice = "sasl"

type requestType string

const (
	unknownRequestType  requestType = ""
	bindRequestType     requestType = "bind"
	searchRequestType   requestType = "search"
	extendedRequestType requestType = "extended"
	modifyRequestType   requestType = "modify"
	addRequestType      requestType = "add"
	deleteRequestType   requestType = "delete"
	unbindRequestType   requestType = "unbind"
	compareRequestType  requestType = "compare"
	modifyDNRequestType requestType = "modifyDN"
	abandonRequestType  requestType = "abandon"
)

// Message defines a common interface for all messages
type Message interface {
	// GetID returns the message ID
	GetID() int64
}

// baseMessage defines a common base type for all messages (typically embedded)
type baseMessage struct {
	id int64
}

// GetID() returns the message ID
func (m baseMessage) GetID() int64 { return m.id }

// SearchMessage is a search request message
type SearchMessage struct {
	baseMessage
	// BaseDN for the request
	BaseDN string
	// Scope of the request
	Scope Scope
	// DerefAliases for the request
	DerefAliases int
	// TimeLimit is the max time in seconds to spend processing
	TimeLimit int64
	// SizeLimit is the max number of results to return
	SizeLimit int64
	// TypesOnly is true if the client only expects type info
	TypesOnly bool
	// Filter for the request
	Filter string
	// Attributes requested
	Attributes []string
	// Controls requested
	Controls []Control
}

// SimpleBindMessage is a simple bind request message
type SimpleBindMessage struct {
	baseMessage
	// AuthChoice for the request (SimpleAuthChoice)
	AuthChoice AuthChoice
	// UserName for the bind request
	UserName string
	// Password for the bind request
	Password Password
	// Controls are optional controls for the bind request
	Controls []Control
}

// SASLBindMessage is a bind request message using the SASL authentication
// choice (RFC 4511 4.2, RFC 4513 5.2).  It is routed to the Bind route(s);
// use Request.GetSASLBindMessage to retrieve it.  SASL exchanges that need
// more than one round trip are answered with ResultSaslBindInProgress and a
// BindResponse carrying server credentials (see
// BindResponse.SetServerSASLCredentials).
type SASLBindMessage struct {
	baseMessage
	// UserName is the bind request's name, which is usually empty for SASL
	// binds (the identity is carried in the credentials).
	UserName string
	// Mechanism is the SASL mechanism name (e.g. "EXTERNAL", "PLAIN")
	Mechanism string
	// Credentials are the raw SASL credentials.  They are nil when the
	// request had no credentials and non-nil (possibly empty) when it had.
	Credentials []byte
	// Controls are optional controls for the bind request
	Controls []Control
}

// ExtendedOperationMessage is an extended operation request message
type ExtendedOperationMessage struct {
	baseMessage
	// Name of the extended operation
	Name ExtendedOperationName
	// Value of the extended operation: the raw octets of the requestValue
	// ([1]), empty when the request had none (see HasValue)
	Value string
	// HasValue tells whether the request carried a requestValue
	HasValue bool
	// Controls are optional controls for the request
	Controls []Control
}

// DeleteMessage is an delete request message
type DeleteMessage struct {
	baseMessage
	// DN identifies the entry being added
	DN string

	// Controls hold optional controls to send with the request
	Controls []Control
}

// CompareMessage is a compare request message (RFC 4511 4.10)
type CompareMessage struct {
	baseMessage
	// DN of the entry to compare against
	DN string
	// AttributeDesc is the attribute description of the assertion
	AttributeDesc string
	// AssertionValue is the value to compare, as raw octets
	AssertionValue string
	// Controls are optional controls for the request
	Controls []Control
}

// ModifyDNMessage is a modify DN request message (RFC 4511 4.9)
type ModifyDNMessage struct {
	baseMessage
	// DN of the entry to rename/move
	DN string
	// NewRDN is the new relative distinguished name of the entry
	NewRDN string
	// DeleteOldRDN tells whether the old RDN values are removed from the entry
	DeleteOldRDN bool
	// NewSuperior is the DN of the new parent entry; empty when the request
	// doesn't move the entry
	NewSuperior string
	// Controls are optional controls for the request
	Controls []Control
}

// AbandonMessage is an abandon request message (RFC 4511 4.11).  The server
// never responds to it.
type AbandonMessage struct {
	baseMessage
	// MessageID is the LDAP message ID of the request to abandon
	MessageID int64
}

// UnbindMessage is an unbind request message
type UnbindMessage struct {
	baseMessage
}

// newMessage will create a new message from the packet.
func newMessage(p *packet) (Message, error) {
	const op = "gldap.NewMessage"

	reqType, err := p.requestType()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}

	msgID, err := p.requestMessageID()
	if err != nil {
		return nil, fmt.Errorf("%s: unable to get message id: %w", op, err)
	}

	switch reqType {
	case unbindRequestType:
		return &UnbindMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
		}, nil
	case bindRequestType:
		params, err := p.bindParameters()
		var bindErr *BindRequestError
		if errors.As(err, &bindErr) {
			// still a bind: it goes to the Bind route (patch 19)
			return &bindRequestErrorMessage{
				baseMessage: baseMessage{
					id: msgID,
				},
				err: bindErr,
			}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: invalid bind message: %w", op, err)
		}
		if params.authChoice == SASLAuthChoice {
			return &SASLBindMessage{
				baseMessage: baseMessage{
					id: msgID,
				},
				UserName:    params.name,
				Mechanism:   params.mechanism,
				Credentials: params.credentials,
				Controls:    params.controls,
			}, nil
		}
		return &SimpleBindMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			UserName:   params.name,
			Password:   params.password,
			AuthChoice: SimpleAuthChoice,
			Controls:   params.controls,
		}, nil
	case searchRequestType:
		parameters, err := p.searchParmeters()
		if err != nil {
			return nil, fmt.Errorf("%s: invalid search message: %w", op, err)
		}
		return &SearchMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			BaseDN:       parameters.baseDN,
			Scope:        Scope(parameters.scope),
			DerefAliases: int(parameters.derefAliases),
			SizeLimit:    parameters.sizeLimit,
			TimeLimit:    parameters.timeLimit,
			TypesOnly:    parameters.typesOnly,
			Filter:       parameters.filter,
			Attributes:   parameters.attributes,
			Controls:     parameters.controls,
		}, nil
	case extendedRequestType:
		params, err := p.extendedParameters()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		m := &ExtendedOperationMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			Name:     params.name,
			Controls: params.controls,
		}
		if params.value != nil {
			m.Value, m.HasValue = *params.value, true
		}
		return m, nil
	case modifyRequestType:
		parameters, err := p.modifyParameters()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		return &ModifyMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			DN:       parameters.dn,
			Changes:  parameters.changes,
			Controls: parameters.controls,
		}, nil
	case addRequestType:
		parameters, err := p.addParameters()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		return &AddMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			DN:         parameters.dn,
			Attributes: parameters.attributes,
			Controls:   parameters.controls,
		}, nil
	case deleteRequestType:
		dn, controls, err := p.deleteParameters()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		return &DeleteMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			DN:       dn,
			Controls: controls,
		}, nil
	case compareRequestType:
		parameters, err := p.compareParameters()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		return &CompareMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			DN:             parameters.dn,
			AttributeDesc:  parameters.attributeDesc,
			AssertionValue: parameters.assertionValue,
			Controls:       parameters.controls,
		}, nil
	case modifyDNRequestType:
		parameters, err := p.modifyDNParameters()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		return &ModifyDNMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			DN:           parameters.dn,
			NewRDN:       parameters.newRDN,
			DeleteOldRDN: parameters.deleteOldRDN,
			NewSuperior:  parameters.newSuperior,
			Controls:     parameters.controls,
		}, nil
	case abandonRequestType:
		abandonID, err := p.abandonMessageID()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		return &AbandonMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			MessageID: abandonID,
		}, nil
	default:
		return &ExtendedOperationMessage{
			baseMessage: baseMessage{
				id: msgID,
			},
			Name: ExtendedOperationUnknown,
		}, nil
	}
}
