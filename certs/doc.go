// Package certs is the merchant API's mutual TLS: the server's TLS
// configuration, the merchant identity carried by a client certificate,
// certificate reload without restart, a serial-number revocation list, and a
// development CA that issues server and client certificates.
//
// A connection is accepted only with TLS 1.2 or later (1.3 preferred; on 1.2
// only ECDHE suites with an AEAD) and a client certificate that chains to
// Quill's client CA, is within its validity, carries the clientAuth extended
// key usage, has no revoked serial in its chain, and names exactly one
// merchant: the SAN URI quill://merchant/<id>, else the subject CN.
//
// Security caveats:
//
//   - The checks run in tls.Config.VerifyConnection, which Go calls on full
//     handshakes and on resumed sessions alike, so a certificate revoked
//     after a session ticket was issued is refused on resumption too. A
//     connection already established is not torn down on revocation.
//   - With TLS 1.3 the client finishes its handshake before the server has
//     checked the client certificate; a refused client sees the alert on its
//     first read.
//   - Revocation is a dev list of serial numbers matched regardless of issuer
//     (sound with a single client CA); CRL and OCSP are future work.
//   - The dev CA keeps its key in a file; in production keep it in Vault or an
//     HSM. CA values print without their key.
//
// certs depends on crypto/tls only; it does not import net/http.
package certs
