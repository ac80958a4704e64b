package scan

import "fmt"

// APIError is an error answer of the cloud API, as a Source reports it.
type APIError struct {
	Code       string
	Message    string
	RequestID  string
	HTTPStatus int
}

func (e *APIError) Error() string {
	if e.RequestID != "" {
		return fmt.Sprintf("%s (HTTP %d): %s (request id %s)", e.Code, e.HTTPStatus, e.Message, e.RequestID)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
}
