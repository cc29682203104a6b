package quillclient

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/quillpay/quill/keys"
)

// FuzzParseListing: whatever the key listing says, parsing does not panic and
// returns only keys with an id and a parsed public key.
func FuzzParseListing(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(nil)
	pemBytes, err := keys.MarshalPublicKeyPEM(pub)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(map[string]any{"data": []map[string]string{{"serial_no": "P1", "algorithm": "ed25519", "public_key": string(pemBytes)}}})
	for _, seed := range []string{string(good), `{"data":[]}`, `{"data":[{"serial_no":"","public_key":""}]}`, `{"data":null}`, `[]`, `{`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		found, err := parseListing(body)
		if err != nil {
			if found != nil {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(found) == 0 {
			t.Fatal("an empty listing accepted")
		}
		for id, k := range found {
			if id == "" || k.ID != id || k.Public == nil {
				t.Fatalf("bad key %q: %+v", id, k)
			}
		}
	})
}
