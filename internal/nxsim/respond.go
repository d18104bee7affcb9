package nxsim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"message":"encode response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// nqlError is the error body of the NQL API: {"message","code","source"}.
type nqlError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Source  string `json:"source,omitempty"`
}

func writeNQLError(w http.ResponseWriter, status int, msg, source string) {
	writeJSON(w, status, nqlError{Message: msg, Code: status, Source: source})
}

// actError is the error body of the Remote Actions API: {"code","message"}.
type actError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeActError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, actError{Code: code, Message: msg})
}

// oauthError is the token endpoint's error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// group is an API group: it chooses the error shape, the permission and the fault
// settings that apply.
type group string

const (
	groupToken   group = "token"
	groupNQL     group = "nql"
	groupExport  group = "export"
	groupActions group = "act"
)

// writeGroupError writes an error in the shape of g's API.
func writeGroupError(w http.ResponseWriter, g group, status int, code, msg string) {
	switch g {
	case groupToken:
		writeJSON(w, status, oauthError{Error: code, Description: msg})
	case groupActions:
		writeActError(w, status, code, msg)
	default:
		writeNQLError(w, status, msg, code)
	}
}
