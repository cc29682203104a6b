// Package netlimit is a TLS listener that bounds what clients can make the
// server hold: concurrent connections overall, concurrent TLS handshakes, and
// concurrent connections per client identity (known once the handshake has
// verified the client certificate). It runs each handshake itself, before
// handing the connection to net/http, so it also counts failed handshakes
// (for a periodic summary instead of one log line each).
//
// A connection over a cap is closed at once, without a response: answering
// would cost the work the cap exists to bound. A handshake waits for a free
// handshake slot only after the client's first flight (ClientHello) has
// arrived, so clients that connect and send nothing hold a connection slot
// for at most the handshake timeout, never a handshake slot.
package netlimit
