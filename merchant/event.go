package merchant

import (
	"context"
	"time"
)

// Action names what an operator did. The set is open (certificate actions
// belong to the certificates work) but the names below are stable: auditors
// filter on them.
type Action string

// Operator actions.
const (
	MerchantAdded    Action = "merchant.added"
	MerchantUpdated  Action = "merchant.updated"
	MerchantDisabled Action = "merchant.disabled"
	MerchantEnabled  Action = "merchant.enabled"
	KeyAdded         Action = "key.added"
	KeyRotated       Action = "key.rotated"
	KeyRetired       Action = "key.retired"
	KeyRevoked       Action = "key.revoked"
	CertIssued       Action = "cert.issued"
	CertRotated      Action = "cert.rotated"
	CertRevoked      Action = "cert.revoked"
)

// Event is one operator action, as the append-only audit log keeps it.
type Event struct {
	Seq      int64     `json:"seq"`                  // assigned by the log, increasing
	At       time.Time `json:"at"`                   // assigned by the log's clock (the database)
	Actor    string    `json:"actor"`                // operator identity from the CLI config
	Action   Action    `json:"action"`               // what was done
	Subject  string    `json:"subject"`              // a merchant id or a key ring owner (_platform…)
	OldKeyID string    `json:"old_key_id,omitempty"` // the key id (or serial) replaced, retired or revoked
	NewKeyID string    `json:"new_key_id,omitempty"` // the key id (or serial) added
	Detail   string    `json:"detail,omitempty"`     // a short human note (changed fields, overlap); never secrets
}

// EventFilter selects events; zero fields match everything, and the fields
// combine with AND.
type EventFilter struct {
	Subject string
	Action  Action
	After   int64 // Seq strictly above
	Limit   int   // 0: 100
	// Subjects, when not nil, keeps only events about one of these subjects;
	// an empty, non-nil list matches nothing. An auditor's scope is applied
	// here, under whatever Subject the auditor asked for.
	Subjects []string
	// Actions, when not empty, keeps only events whose action is one of
	// these; an item without a dot names a family ("key" matches key.*).
	Actions []Action
	// Since and Until bound At to [Since, Until); a zero bound is open.
	Since, Until time.Time
}

// EventLog is the append-only record of operator actions.
type EventLog interface {
	// Record appends ev and returns it with Seq and At set, or an error
	// wrapping ErrUnavailable or ErrInvalid. Seq order is commit order: an
	// event commits after every event with a lower Seq, so a reader paging
	// by Seq never passes over one that is still to commit.
	Record(ctx context.Context, ev Event) (Event, error)
	// Events returns the events matching f, oldest first.
	Events(ctx context.Context, f EventFilter) ([]Event, error)
}
