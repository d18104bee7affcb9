// Package nexthink is the client of one Nexthink instance: the OAuth token, NQL
// execute v2 and export, and the Remote Actions API (Nexthink's OpenAPI documents are
// the contract; nxsim is the stand-in in tests).
//
// Every call first takes the instance's limiter (NQL or Remote Actions); a call that
// would wait longer than its MaxWait fails at once as rate limited. Failures that may
// pass (429, 500, 502, 503, 504, transport errors and timeouts) are retried with
// exponential backoff that honours Retry-After, within RetryFor and the context's
// deadline. A failing or busy instance is not hammered: after three failed attempts
// in a row, or a 429's Retry-After, the client's gate holds every call for a while
// and lets one probe through (see gate); a call that would wait there longer than
// its MaxWait fails at once. Errors are *Error values that name the instance and the
// call; Problem maps them onto dexbridge's problem codes.
//
// Retry policy per call:
//   - NQL execute, export submit and status, the remote-action list and details are
//     reads, so they are retried on every transient failure;
//   - the results file download is retried until its body starts to stream; a
//     failure mid-stream ends the export (rows already handed over cannot be taken
//     back);
//   - a remote-action trigger (POST /api/v1/act/execute) is retried only when the
//     request certainly did not run: no connection was made, the token could not be
//     fetched, or the answer was 429 or 503. A 500, 502, 504 or a timeout after the
//     request was sent is returned as is, since a second trigger could run the action
//     twice on every device.
package nexthink
