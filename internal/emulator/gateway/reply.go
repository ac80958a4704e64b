package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// RequestID returns an id shaped like the real ones (upper-case UUID).
func RequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// WriteJSON answers body with status; the request id goes in a header too.
func WriteJSON(w http.ResponseWriter, status int, requestID string, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"RequestId":"` + requestID + `","Code":"InternalError","Message":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=utf-8")
	h.Set("x-acs-request-id", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// ErrorBody is the error body of the RPC products.
type ErrorBody struct {
	RequestId string `json:"RequestId"`
	HostId    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
}

// WriteError answers e as host (e.g. "sts.aliyuncs.com") of product (e.g. "Sts") would.
func WriteError(w http.ResponseWriter, e *Error, host, product string) {
	id := RequestID()
	WriteJSON(w, e.Status, id, ErrorBody{
		RequestId: id,
		HostId:    host,
		Code:      e.Code,
		Message:   e.Message,
		Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.Code) + "&product=" + product + "&requestId=" + id,
	})
}

// Params merges the query and a form body; the query wins.
func Params(r *http.Request, body []byte) url.Values {
	params := r.URL.Query()
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || len(body) == 0 {
		return params
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return params
	}
	for k, vs := range form {
		if !params.Has(k) {
			params[k] = vs
		}
	}
	return params
}

// ActionAndVersion are the RPC action and version of a call: V3 calls carry
// them in x-acs-* headers, legacy RPC calls in parameters.
func ActionAndVersion(r *http.Request, params url.Values) (action, version string) {
	action, version = params.Get("Action"), params.Get("Version")
	if IsV3(r) || action == "" {
		if h := r.Header.Get("x-acs-action"); h != "" {
			action = h
		}
	}
	if IsV3(r) || version == "" {
		if h := r.Header.Get("x-acs-version"); h != "" {
			version = h
		}
	}
	return action, version
}
