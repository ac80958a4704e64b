package slsemu

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/pierrec/lz4/v4"
)

const (
	maxKeyBytes       = 128
	maxValueBytes     = 1024 * 1024
	maxTopicBytes     = 128
	maxPastLogTime    = 7 * 24 * time.Hour
	maxFutureLogTime  = 15 * time.Minute
	protobufMediaType = "application/x-protobuf"
)

var contentKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var reservedKeys = map[string]bool{
	"__time__":           true,
	"__source__":         true,
	"__topic__":          true,
	"__partition_time__": true,
	"_extract_others_":   true,
	"__extract_others__": true,
}

func (s *Server) putLogs(req *request) *apiError {
	r := req.http
	if strings.HasSuffix(r.URL.Path, "/shards/route") && r.URL.Query().Get("key") == "" {
		return parameterInvalid("the query parameter key is required by shards/route")
	}
	switch ct := r.Header.Get("Content-Type"); {
	case ct == "":
		return errorf(http.StatusBadRequest, "MissingContentType", "Content-Type does not exist in http header when body is not empty.")
	case ct != protobufMediaType:
		return errorf(http.StatusUnsupportedMediaType, "InvalidContentType", "Content-Type %s is unsupported.", ct)
	}
	rawSizeHeader := r.Header.Get("x-log-bodyrawsize")
	if rawSizeHeader == "" {
		return errorf(http.StatusBadRequest, "MissingBodyRawSize", "x-log-bodyrawsize does not exist in header when it is necessary.")
	}
	rawSize, err := strconv.Atoi(rawSizeHeader)
	if err != nil || rawSize < 0 {
		return errorf(http.StatusBadRequest, "InvalidBodyRawSize", "x-log-bodyrawsize %s is invalid.", rawSizeHeader)
	}
	if rawSize > s.opts.MaxBodyBytes {
		return s.tooLarge()
	}
	raw, e := s.decompress(r.Header.Get("x-log-compresstype"), req.body, rawSize)
	if e != nil {
		return e
	}
	var group sls.LogGroup
	if err := proto.Unmarshal(raw, &group); err != nil {
		return errorf(http.StatusBadRequest, "PostBodyInvalid", "Protobuffer content cannot be parsed.")
	}
	if len(group.Logs) > s.opts.MaxLogsPerRequest {
		return s.tooLarge()
	}
	logs, e := s.validate(&group)
	if e != nil {
		return e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.logstoreLocked(req.project, req.logstore)
	if ls == nil { // cannot happen: logstores are never deleted
		return errorf(http.StatusNotFound, "LogStoreNotExist", "logstore %s does not exist", req.logstore)
	}
	ls.logs = append(ls.logs, logs...)
	s.stats.PutLogsOK++
	s.stats.LogsStored += len(logs)
	s.stats.RawBytes += int64(len(raw))
	s.stats.WireBytes += int64(len(req.body))
	return nil
}

func (s *Server) tooLarge() *apiError {
	return errorf(http.StatusBadRequest, "PostBodyTooLarge",
		"Logs must be less than or equal to %d bytes and %d entries.", s.opts.MaxBodyBytes, s.opts.MaxLogsPerRequest)
}

// decompress undoes x-log-compresstype and checks the result against
// x-log-bodyrawsize.
func (s *Server) decompress(compressType string, body []byte, rawSize int) ([]byte, *apiError) {
	uncompressError := errorf(http.StatusBadRequest, "PostBodyUncompressError", "Failed to decompress logs.")
	switch compressType {
	case "":
		if len(body) != rawSize {
			return nil, errorf(http.StatusBadRequest, "InvalidBodyRawSize",
				"x-log-bodyrawsize %d does not match the uncompressed body of %d bytes.", rawSize, len(body))
		}
		return body, nil
	case "lz4":
		out := make([]byte, rawSize)
		n, err := lz4.UncompressBlock(body, out)
		if err != nil || n != rawSize {
			return nil, uncompressError
		}
		return out, nil
	case "zstd":
		out, err := s.zstd.DecodeAll(body, make([]byte, 0, rawSize))
		if err != nil || len(out) != rawSize {
			return nil, uncompressError
		}
		return out, nil
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, uncompressError
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(rawSize)+1))
		if err != nil || len(out) != rawSize {
			return nil, uncompressError
		}
		return out, nil
	}
	return nil, errorf(http.StatusBadRequest, "InvalidCompressType", "x-log-compresstype %s is unsupported.", compressType)
}

// validate checks a whole log group before anything is stored, so a refused
// request leaves no trace.
func (s *Server) validate(g *sls.LogGroup) ([]Log, *apiError) {
	invalidEncoding := errorf(http.StatusBadRequest, "InvalidEncoding", "Non-UTF8 characters are in logs.")
	topic, source := g.GetTopic(), g.GetSource()
	for _, v := range []string{topic, source} {
		if !utf8.ValidString(v) {
			return nil, invalidEncoding
		}
	}
	if len(topic) > maxTopicBytes || len(source) > maxTopicBytes {
		return nil, errorf(http.StatusBadRequest, "PostBodyInvalid", "Topic and source must not exceed %d bytes.", maxTopicBytes)
	}
	var tags map[string]string
	if len(g.LogTags) > 0 {
		tags = make(map[string]string, len(g.LogTags))
	}
	for _, t := range g.LogTags {
		if !utf8.ValidString(t.GetKey()) || !utf8.ValidString(t.GetValue()) {
			return nil, invalidEncoding
		}
		tags[t.GetKey()] = t.GetValue()
	}

	now := s.now()
	earliest, latest := now.Add(-maxPastLogTime).Unix(), now.Add(maxFutureLogTime).Unix()
	logs := make([]Log, 0, len(g.Logs))
	for _, l := range g.Logs {
		if t := int64(l.GetTime()); t < earliest || t > latest {
			return nil, errorf(http.StatusBadRequest, "PostBodyInvalid",
				"The post data time is out of range: %d is not within [%d, %d].", t, earliest, latest)
		}
		out := Log{
			Time:     l.GetTime(),
			Topic:    topic,
			Source:   source,
			Tags:     tags,
			Contents: make(map[string]string, len(l.Contents)),
			Keys:     make([]string, 0, len(l.Contents)),
		}
		for _, c := range l.Contents {
			key, value := c.GetKey(), c.GetValue()
			if !utf8.ValidString(key) || !utf8.ValidString(value) {
				return nil, invalidEncoding
			}
			if e := checkKey(key); e != nil {
				return nil, e
			}
			if len(value) > maxValueBytes {
				return nil, errorf(http.StatusBadRequest, "PostBodyInvalid",
					"The value of key %s is %d bytes, more than %d.", key, len(value), maxValueBytes)
			}
			out.Contents[key] = value
			out.Keys = append(out.Keys, key)
		}
		logs = append(logs, out)
	}
	return logs, nil
}

func checkKey(key string) *apiError {
	var why string
	switch {
	case len(key) == 0 || len(key) > maxKeyBytes:
		why = fmt.Sprintf("a key must be 1 to %d bytes", maxKeyBytes)
	case reservedKeys[key]:
		why = "the key is reserved"
	case !contentKeyRE.MatchString(key):
		why = "a key is made of letters, digits and underscores and does not start with a digit"
	default:
		return nil
	}
	return errorf(http.StatusBadRequest, "InvalidKey", "Invalid keys are in logs: %q (%s).", key, why)
}
