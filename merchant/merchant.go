package merchant

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by this package and its backends.
var (
	// ErrInvalidID means a string is not a merchant id.
	ErrInvalidID = errors.New("merchant: invalid merchant id: must be 1 to 32 of A-Z a-z 0-9 _ - starting with a letter or digit")
	// ErrInvalid means a profile breaks the rules (fee, status, id).
	ErrInvalid = errors.New("merchant: invalid profile")
	// ErrUnknown means there is no merchant by that id.
	ErrUnknown = errors.New("merchant: unknown merchant")
	// ErrDisabled means the merchant exists but is disabled; it matches
	// ErrUnknown too, so it is refused wherever unknown merchants are.
	ErrDisabled = fmt.Errorf("merchant: merchant disabled (%w)", ErrUnknown)
	// ErrExists means a merchant with that id is already registered.
	ErrExists = errors.New("merchant: merchant already exists")
	// ErrUnavailable means the registry cannot be read or written.
	ErrUnavailable = errors.New("merchant: registry unavailable")
)

// MaxIDLen is the longest merchant id (WeChat Pay caps mchid at 32).
const MaxIDLen = 32

// ID is a merchant id that passed ParseID.
type ID string

// ParseID returns s as an ID if it matches ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$.
// The error wraps ErrInvalidID and does not quote s.
func ParseID(s string) (ID, error) {
	if !ValidID(s) {
		return "", ErrInvalidID
	}
	return ID(s), nil
}

// ValidID reports whether s is a merchant id (see ParseID).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Status is whether a merchant is served.
type Status string

// Merchant statuses.
const (
	Active   Status = "active"   // served
	Disabled Status = "disabled" // refused with 403; nothing written
)

// Rules are a merchant's field rules as stored: amount bounds are decimal
// strings in major units. Package policy compiles and enforces them (its
// Rules type has the same fields) and fills empty fields with defaults.
type Rules struct {
	Currencies     []string `json:"currencies"`       // allow-list, default ["CNY"]
	MinAmount      string   `json:"min_amount"`       // default "0.01"
	MaxAmount      string   `json:"max_amount"`       // default "1000000.00"
	OrderIDPattern string   `json:"order_id_pattern"` // default ^ORD[0-9]{12,29}$
}

// Profile is a merchant's registration: what it may do and its rules. ID is
// a plain string so that it flows into ledger account codes and logs as is;
// every backend admits only ids that pass ParseID (Check).
type Profile struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CanDeposit bool      `json:"can_deposit"`
	FeeBps     int64     `json:"fee_bps"` // fee in basis points of each payment
	Rules      Rules     `json:"rules"`
	Status     Status    `json:"status"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// MaxNameLen bounds a merchant's display name.
const MaxNameLen = 200

// Check validates what this package owns of a profile: the id, the fee
// (0..10000 basis points), the name length and the status (empty reads as
// Active). It does not compile the rules: policy.ValidateMerchant does both.
// Errors wrap ErrInvalidID or ErrInvalid.
func (p Profile) Check() error {
	if !ValidID(p.ID) {
		return ErrInvalidID
	}
	switch {
	case p.FeeBps < 0 || p.FeeBps > 10000:
		return fmt.Errorf("%w: merchant %s: fee_bps %d outside 0..10000", ErrInvalid, p.ID, p.FeeBps)
	case len(p.Name) > MaxNameLen:
		return fmt.Errorf("%w: merchant %s: name longer than %d bytes", ErrInvalid, p.ID, MaxNameLen)
	case p.Status != "" && p.Status != Active && p.Status != Disabled:
		return fmt.Errorf("%w: merchant %s: status must be active or disabled", ErrInvalid, p.ID)
	}
	return nil
}

// Directory finds the profiles of merchants the API serves.
type Directory interface {
	// Merchant returns the profile of an active merchant id. It returns an
	// error wrapping ErrUnknown for an unknown id, ErrDisabled (which also
	// matches ErrUnknown) for a disabled one, and ErrUnavailable when no
	// profiles could ever be loaded.
	Merchant(ctx context.Context, id string) (Profile, error)
}

// Lister reads every profile at once; it is what Cache loads from.
type Lister interface {
	// List returns every merchant, active and disabled, sorted by id, or an
	// error wrapping ErrUnavailable.
	List(ctx context.Context) ([]Profile, error)
}

// Registry is where operators change profiles. Each write records ev (its
// Subject, Action and key ids filled in by the caller) in the same
// transaction as the change.
type Registry interface {
	Lister
	// Get returns id's profile whatever its status, or ErrUnknown.
	Get(ctx context.Context, id ID) (Profile, error)
	// Add registers p (status Active if empty); ErrExists if the id is taken.
	Add(ctx context.Context, p Profile, ev Event) (Profile, error)
	// Update applies change to id's current profile (under a lock) and
	// stores the result; change may not alter the id, and what it returns
	// (what changed, for people) becomes ev.Detail when not empty.
	// ErrUnknown if there is no such merchant; change's error is returned
	// and nothing is written.
	Update(ctx context.Context, id ID, change func(*Profile) (string, error), ev Event) (Profile, error)
}
