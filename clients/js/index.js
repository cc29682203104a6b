// Quill client for Node.js (20+): scheme A and scheme B (RFC 9421) request signing, response
// verification, platform keys fetched and cached by serial. No dependencies
// beyond node:crypto and node:https. See README.md.
export {
  SCHEME_A,
  DEFAULT_RESPONSE_WINDOW_SECONDS,
  SchemeA,
  VerificationError,
  UnknownKeyError,
  stringToSign,
  responseMessage,
  newNonce,
  verifyResponseSignature,
  toBytes,
} from './src/scheme-a.js';
export { PlatformKeys, parseListing, staticKeys, DEFAULT_REFETCH_INTERVAL_MS } from './src/platform-keys.js';
export { QuillClient, UnverifiedResponseError, CERTIFICATES_PATH, DEFAULT_MAX_RESPONSE_BYTES } from './src/client.js';
export {
  SchemeB, DEFAULT_LABEL, verifyResponse, signatureBase, buildSignatureBase, contentDigest, verifyContentDigest,
  algorithmOf, signBase, verifyBase, SignatureBaseError,
} from './src/scheme-b.js';
export { parseDictionary, parseItem, serializeDictionary, serializeItem, StructuredFieldError } from './src/sfv.js';
