package policy

import "fmt"

// ValidateMerchant checks a whole merchant profile: what package merchant
// checks (the id is a merchant id, fee_bps within 0..10000, the status) and
// that the rules compile. Errors wrap ErrRules (and merchant.ErrInvalidID or
// merchant.ErrInvalid where that is the cause).
func ValidateMerchant(m Merchant) error {
	if err := m.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrRules, err)
	}
	if _, err := Compile(m.Rules); err != nil {
		return fmt.Errorf("merchant %q: %w", m.ID, err)
	}
	return nil
}
