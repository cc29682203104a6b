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

// EventFilter selects events; zero fields match everything.
type EventFilter struct {
	Subject string
	Action  Action
	After   int64 // Seq strictly above
	Limit   int   // 0: 100
}

// EventLog is the append-only record of operator actions.
type EventLog interface {
	// Record appends ev and returns it with Seq and At set, or an error
	// wrapping ErrUnavailable or ErrInvalid.
	Record(ctx context.Context, ev Event) (Event, error)
	// Events returns the events matching f, oldest first.
	Events(ctx context.Context, f EventFilter) ([]Event, error)
}
