package policy

import (
	"errors"
	"testing"

	"github.com/quillpay/quill/merchant"
)

func TestValidateMerchant(t *testing.T) {
	for name, tt := range map[string]struct {
		m     Merchant
		cause error
	}{
		"reserved _payer":    {Merchant{ID: "_payer"}, merchant.ErrInvalidID},
		"reserved _platform": {Merchant{ID: "_platform"}, merchant.ErrInvalidID},
		"leading dash":       {Merchant{ID: "-x"}, merchant.ErrInvalidID},
		"slash":              {Merchant{ID: "a/b"}, merchant.ErrInvalidID},
		"bad fee":            {Merchant{ID: "M3", FeeBps: 10001}, merchant.ErrInvalid},
		"bad rules":          {Merchant{ID: "M3", Rules: Rules{MaxAmount: "abc"}}, ErrRules},
		"unknown currency":   {Merchant{ID: "M3", Rules: Rules{Currencies: []string{"XYZ"}}}, ErrRules},
	} {
		t.Run(name, func(t *testing.T) {
			err := ValidateMerchant(tt.m)
			if !errors.Is(err, ErrRules) || !errors.Is(err, tt.cause) {
				t.Fatalf("ValidateMerchant(%+v) = %v; want ErrRules and %v", tt.m, err, tt.cause)
			}
		})
	}
	for _, m := range []Merchant{{ID: "M_1-a"}, {ID: "M1", FeeBps: 60, Rules: Rules{Currencies: []string{"CNY", "USD"}}, Status: merchant.Disabled}} {
		if err := ValidateMerchant(m); err != nil {
			t.Errorf("ValidateMerchant(%+v) = %v", m, err)
		}
	}
}
