package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"github.com/quillpay/quill/keys"
)

// TestWeChatPayGoSDKRotation drives Quill with the official WeChat Pay Go
// SDK (github.com/wechatpay-apiv3/wechatpay-go, unmodified; it signs the
// requests and verifies every response with the platform public key): a
// merchant rotates to a new key id and keeps working, the old key works
// through the overlap and is refused once revoked.
func TestWeChatPayGoSDKRotation(t *testing.T) {
	h := startServer(t)
	h.deposit("42", "100.00")
	ctx := context.Background()
	fs := h.fileStore()
	platform, err := fs.PlatformKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cert := h.certs[demoMerchant]
	httpClient := h.httpClient(&cert)
	sdk := func(keyID string, key *rsa.PrivateKey) *core.Client {
		t.Helper()
		c, err := core.NewClient(ctx,
			option.WithWechatPayPublicKeyAuthCipher(demoMerchant, keyID, key, platform.ID(), platform.Public().(*rsa.PublicKey)),
			option.WithHTTPClient(httpClient))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pay := func(c *core.Client) int {
		t.Helper()
		res, err := c.Post(ctx, h.base+"/v1/payments", map[string]string{
			"order_id": newOrderID(), "amount": "1.00", "currency": "CNY", "payer_token": h.token("42"),
		})
		var apiErr *core.APIError
		switch {
		case errors.As(err, &apiErr):
			return apiErr.StatusCode
		case err != nil:
			t.Fatalf("SDK: %v", err) // includes a response signature the SDK refused
		}
		return res.Response.StatusCode
	}
	old := h.clients[demoMerchant]
	oldSDK := sdk(old.KeyID, old.Key.(*rsa.PrivateKey))
	if st := pay(oldSDK); st != http.StatusOK {
		t.Fatalf("before rotation: %d", st)
	}

	newKey := rsaKey(t)
	newID := keys.NewKeyID("", nil)
	m := keys.Manager{Rings: fs}
	if err := m.Rotate(ctx, demoMerchant, keys.PublicKey{ID: newID, Algorithm: keys.RSAPKCS1SHA256, Public: &newKey.PublicKey}, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Second) // the server's file store looks once a clock second
	newSDK := sdk(newID, newKey)
	if st := pay(newSDK); st != http.StatusOK {
		t.Fatalf("new key id: %d", st)
	}
	if st := pay(oldSDK); st != http.StatusOK {
		t.Fatalf("old key id within the overlap: %d", st)
	}

	if err := m.SetStatus(ctx, demoMerchant, old.KeyID, keys.Revoked, time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Second)
	if st := pay(oldSDK); st != http.StatusUnauthorized {
		t.Fatalf("revoked old key id: %d, want 401", st)
	}
	if st := pay(newSDK); st != http.StatusOK {
		t.Fatalf("new key id after the old was revoked: %d", st)
	}
}
