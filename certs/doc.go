// Package certs is the merchant API's mutual TLS: the server's TLS
// configuration, the merchant identity carried by a client certificate,
// live reload of the TLS material from the key store (Live: server
// certificate, client CA bundle, X.509 CRL), and a CA that issues server and
// client certificates (from its own key or a CSR) and signs the CRL.
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
//   - Revocation is an X.509 CRL signed by a CA of the client bundle; it
//     revokes that CA's serials only (one CRL: one issuing CA). Its
//     NextUpdate is not enforced; OCSP is not supported. A CRL that fails to
//     parse or verify never replaces the one in force, and Live.Ready says so.
//   - Before any material loaded, handshakes fail closed: no server
//     certificate, no trusted client CA, every certificate revoked.
//   - The client CA bundle is read per handshake (GetConfigForClient); a
//     resumed session is re-verified against the current bundle.
//   - The dev CA keeps its key in a file; in production keep it in Vault or an
//     HSM. CA values print without their key.
//
// certs depends on crypto/tls only; it does not import net/http.
package certs
