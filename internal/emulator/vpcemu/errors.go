package vpcemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// hostID is what the real gateway puts in HostId of error bodies.
const hostID = "vpc.aliyuncs.com"

type codeInfo struct {
	status  int
	message string
}

// knownCodes are the error codes the emulator answers, with the status and
// message of the real service.
var knownCodes = map[string]codeInfo{
	"InvalidVpnConnectionInstanceId.NotFound": {404, "The specified vpn connection instance id does not exist."},
	"Forbidden":                                  {403, "User not authorized to operate on the specified resource."},
	"Forbbiden.SubUser":                          {403, "User not authorized to operate on the specified resource as your account is created by another user."},
	"Forbidden.RAM":                              {403, "User not authorized to operate on the specified resource, or this API doesn't support RAM."},
	"NoPermission":                               {403, "You are not authorized to do this action."},
	"InvalidParameter":                           {400, "The specified parameter is not valid."},
	"Throttling.User":                            {400, "Request was denied due to user flow control."},
	"Throttling.Api":                             {400, "Request was denied due to api flow control."},
	"Throttling":                                 {400, "Request was denied due to request throttling."},
	"ServiceUnavailable":                         {503, "The request has failed due to a temporary failure of the server."},
	"InternalError":                              {500, "The request processing has failed due to some unknown error, exception or failure."},
	"InvalidAccessKeyId.NotFound":                {404, "Specified access key is not found."},
	"InvalidAccessKeyId.Inactive":                {400, "Specified access key is disabled."},
	"SignatureDoesNotMatch":                      {400, "Specified signature is not matched with our calculation."},
	"IncompleteSignature":                        {400, "The request signature does not conform to Aliyun standards."},
	"InvalidSecurityToken.Expired":               {400, "Specified SecurityToken is expired."},
	"InvalidSecurityToken.Malformed":             {400, "Specified SecurityToken is malformed."},
	"InvalidSecurityToken.MismatchWithAccessKey": {400, "Specified SecurityToken mismatch with the AccessKey."},
	"MissingSecurityToken":                       {400, "SecurityToken is mandatory for this action."},
	"InvalidTimeStamp.Expired":                   {400, "Specified time stamp or date value is expired."},
	"InvalidTimeStamp.Format":                    {400, "Specified time stamp or date value is not well formatted."},
	"SignatureNonceUsed":                         {400, "Specified signature nonce was used already."},
	"MissingSignatureNonce":                      {400, "SignatureNonce is mandatory for this action."},
	"MissingAccessKeyId":                         {400, "AccessKeyId is mandatory for this action."},
	"InvalidAction.NotFound":                     {404, "Specified api is not found, please check your url and method."},
	"InvalidVersion":                             {400, "Specified parameter Version is not valid."},
	"MissingVersion":                             {400, "Version is mandatory for this action."},
}

// apiError is an error answer of the API.
type apiError struct {
	status  int
	code    string
	message string
}

func newAPIError(code string) *apiError {
	info, ok := knownCodes[code]
	if !ok {
		info = codeInfo{400, code}
	}
	return &apiError{status: info.status, code: code, message: info.message}
}

func (e *apiError) withMessage(format string, args ...any) *apiError {
	out := *e
	out.message = fmt.Sprintf(format, args...)
	return &out
}

func missingParam(name string) *apiError {
	return &apiError{status: 400, code: "Missing" + name, message: name + " is mandatory for this action."}
}

func invalidParam(name string) *apiError {
	return newAPIError("InvalidParameter").withMessage("The specified parameter %q is not valid.", name)
}

// faultError turns a connection's configured fault into an answer.
func faultError(f Fault) *apiError {
	e := newAPIError(f.Code)
	if f.HTTPStatus != 0 {
		e.status = f.HTTPStatus
	}
	if f.Message != "" {
		e.message = f.Message
	}
	return e
}

func (e *apiError) isThrottling() bool {
	return e.code == "Throttling" || strings.HasPrefix(e.code, "Throttling.")
}

// newRequestID returns an id shaped like the real ones (upper-case UUID).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func writeJSON(w http.ResponseWriter, status int, requestID string, body any) {
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

type errorBody struct {
	RequestId          string              `json:"RequestId"`
	HostId             string              `json:"HostId"`
	Code               string              `json:"Code"`
	Message            string              `json:"Message"`
	Recommend          string              `json:"Recommend"`
	AccessDeniedDetail *accessDeniedDetail `json:"AccessDeniedDetail,omitempty"`
}

type accessDeniedDetail struct {
	PolicyType               string `json:"PolicyType"`
	AuthPrincipalOwnerId     string `json:"AuthPrincipalOwnerId"`
	AuthPrincipalType        string `json:"AuthPrincipalType"`
	AuthPrincipalDisplayName string `json:"AuthPrincipalDisplayName"`
	NoPermissionType         string `json:"NoPermissionType"`
	AuthAction               string `json:"AuthAction"`
	EncodedDiagnosticMessage string `json:"EncodedDiagnosticMessage"`
}

// errorContext is what an error body may mention about the caller.
type errorContext struct {
	action    string
	accountID string
	accessKey string
}

func writeError(w http.ResponseWriter, e *apiError, ec errorContext) {
	id := newRequestID()
	body := errorBody{
		RequestId: id,
		HostId:    hostID,
		Code:      e.code,
		Message:   e.message,
		Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.code) +
			"&product=Vpc&requestId=" + id,
	}
	if e.code == "Forbidden.RAM" {
		authAction := "vpc:" + ec.action
		body.AccessDeniedDetail = &accessDeniedDetail{
			PolicyType:               "AccountLevelIdentityBasedPolicy",
			AuthPrincipalOwnerId:     ec.accountID,
			AuthPrincipalType:        "SubUser",
			AuthPrincipalDisplayName: ec.accessKey,
			NoPermissionType:         "ImplicitDeny",
			AuthAction:               authAction,
			EncodedDiagnosticMessage: base64.StdEncoding.EncodeToString([]byte("ImplicitDeny " + authAction)),
		}
	}
	writeJSON(w, e.status, id, body)
}
