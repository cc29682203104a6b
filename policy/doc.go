// Package policy holds Quill's field rules: what a decoded payment or deposit
// request must look like before it may touch the ledger.
//
// It provides:
//
//   - Money: ParseAmount turns an exact decimal string in major units ("12.34")
//     into int64 minor units using the currency's ISO 4217 exponent
//     (Exponent); FormatAmount is its inverse. There is no floating point
//     anywhere. Accepted amounts match ^(0|[1-9][0-9]*)(\.[0-9]+)?$ in ASCII,
//     are not zero, fit int64 and have at most the currency's number of
//     decimals; everything else is an *AmountError with a stable code.
//   - Rules: each merchant's currency allow-list, amount range and order-id
//     pattern (Rules, DefaultRules), compiled once (Compile) and cached by
//     the Checker.
//   - Checker: validator/v10 struct tags plus the rules above, turning a
//     PaymentRequest, DepositRequest or RefundRequest into a Payment, Deposit
//     or Refund, or into one *ValidationError listing every failing field
//     (JSON names, stable codes). A refund id follows the merchant's order-id
//     pattern; a refund is not held to the merchant's currency list or
//     amount range (its payment bounds it, in the ledger).
//   - TokenVerifier: payer JWT verification with a pinned algorithm, issuer,
//     audience, expiry and a revocation Denylist; IssuePayerToken for dev tools.
//   - ValidateMerchant: a whole merchant profile (package merchant owns the
//     profile, the id syntax and the Directory; policy adds the rules).
//
// Guarantees: a Payment or Deposit returned without error has an order id
// matching the merchant's pattern (and at most MaxOrderIDLen bytes), an
// allowed currency, an amount within the merchant's inclusive range, and for
// payments a verified, unrevoked payer and 0 <= Fee < Amount with
// Fee = floor(Amount * FeeBps / 10000). Validation is pure; the only I/O is the
// payer token check, whose failure to answer is reported as ErrUnavailable and
// never as a validation error (fail closed: refuse, do not guess).
//
// Field error codes: "required" and "max" (struct tags); "format",
// "precision", "zero", "too_large", "too_small" (amount); "unsupported"
// (currency); "pattern" (order_id, user_id, refund_id); "invalid"
// (payer_token, description, reason).
//
// Security: payer token errors wrap ErrPayerToken with a reason meant for logs;
// the client only sees the "payer_token"/"invalid" field error. Tokens are
// never included in errors.
package policy
