package nexthink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// unavailableRetry is the Retry-After of an unavailable instance that gave none.
const unavailableRetry = 5 * time.Second

// Problem maps e onto dexbridge's problem codes. The detail is safe to show a chatbot:
// it names the instance and what failed, never credentials, URLs or raw payloads;
// e itself is kept as the cause, for logs.
func (e *Error) Problem() *problem.Error {
	p := &problem.Error{Err: e}
	in := e.Instance
	switch {
	case e.Code == CodeRateLimited || e.Status == http.StatusTooManyRequests:
		p.Code, p.RetryAfter = problem.RateLimited, e.RetryAfter
		p.Detail = fmt.Sprintf("instance %s is busy, retry later", in)
	case e.Code == CodeLimiterFailed:
		p.Code, p.RetryAfter = problem.ServiceUnavailable, time.Second
		p.Detail = fmt.Sprintf("dexbridge's rate limiter for instance %s is unavailable", in)
	case e.Code == CodeInvalid:
		p.Code, p.Detail = problem.Invalid, e.Message
	case e.Code == CodePartial:
		p.Code, p.Detail = problem.UpstreamUnavailable, fmt.Sprintf("instance %s cut the export short (licence limit)", in)
	case e.Code == CodeCanceled:
		p.Code, p.Detail = problem.Timeout, fmt.Sprintf("instance %s did not answer in time", in)
	case e.Target != "" && (e.Code == "REMOTE_ACTION_NOT_FOUND" ||
		(e.Status == http.StatusNotFound && (e.Call == callExecute || e.Call == callExport || e.Call == callActDetails))):
		p.Code, p.Detail = problem.NotFound, fmt.Sprintf("instance %s has no %s %s", in, targetKind(e.Call), e.Target)
	case e.Call == callExportFile || (e.Call == callExportStatus && e.Status == http.StatusNotFound):
		// An expired or refused results file URL, an export the instance forgot.
		p.Code, p.RetryAfter = problem.UpstreamUnavailable, max(e.RetryAfter, unavailableRetry)
		p.Detail = fmt.Sprintf("instance %s is unavailable (%s failed)", in, e.Call)
	case e.Status == http.StatusBadRequest:
		p.Code, p.Detail = problem.Invalid, fmt.Sprintf("instance %s rejected the request", in)
		if e.Message != "" {
			p.Detail += ": " + e.Message
		}
	case e.Status == http.StatusUnauthorized:
		p.Code, p.Detail = problem.UpstreamUnavailable, fmt.Sprintf("instance %s refused dexbridge's credentials", in)
	case e.Status == http.StatusForbidden && e.Code == "REMOTE_ACTION_NOT_API_ENABLED":
		p.Code, p.Detail = problem.Unprocessable, fmt.Sprintf("remote action %s is not enabled for the API on instance %s", e.Target, in)
	case e.Status == http.StatusForbidden:
		p.Code, p.Detail = problem.UpstreamUnavailable, fmt.Sprintf("instance %s refused dexbridge's credentials the permission for %s", in, apiName(e.Call))
	case e.Status >= 500 || e.Code == CodeTransport || e.Code == CodeTimeout || e.Code == CodeExportFailed || e.Code == CodeBadResponse ||
		e.Code == CodeUnavailable:
		p.Code, p.RetryAfter = problem.UpstreamUnavailable, e.RetryAfter
		if p.RetryAfter == 0 {
			p.RetryAfter = unavailableRetry
		}
		p.Detail = fmt.Sprintf("instance %s is unavailable (%s failed)", in, e.Call)
	default:
		p.Code, p.Detail = problem.Internal, fmt.Sprintf("call %s to instance %s failed", e.Call, in)
	}
	return p
}

// Problem maps any error of this package onto a problem; other errors go through
// problem.From.
func Problem(err error) *problem.Error {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem()
	}
	if errors.Is(err, context.Canceled) {
		return problem.Wrap(problem.Timeout, err, "the request was cancelled")
	}
	return problem.From(err)
}

func targetKind(call string) string {
	switch call {
	case callActDetails, callActExecute:
		return "remote action"
	}
	return "saved query"
}

func apiName(call string) string {
	switch call {
	case callActList, callActDetails, callActExecute:
		return "the Remote Actions API"
	case callToken:
		return "the token endpoint"
	}
	return "the NQL API"
}
