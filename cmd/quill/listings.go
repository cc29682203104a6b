package main

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/rs/zerolog"
)

// merchantCursorKey is the key sealing the merchant API's listing cursors:
// derived from the auditor cursor secret (so every node that shares it
// accepts the others' cursors), under its own label so that no auditor
// cursor passes for a merchant's. Without the secret, nil: the API then uses
// a random key of this process, and listing cursors last until a restart and
// only on this node.
func merchantCursorKey(c config, log zerolog.Logger) []byte {
	key, err := readCursorKey(c)
	if err != nil {
		log.Warn().Err(err).Msg("merchant listing cursors are sealed with a key of this process: other nodes refuse them, and so does this one after a restart")
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("quill.merchant.cursor.v1"))
	return m.Sum(nil)
}
