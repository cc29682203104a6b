package api

import _ "embed" // for OpenAPI

// OpenAPI is the OpenAPI 3.1 document of the merchant API (openapi.json), as
// JSON, for serving to merchant developers. Its tests keep it in step with
// NewHandler's routes, the error table and the request and response types.
// Callers must not modify it.
//
//go:embed openapi.json
var OpenAPI []byte
