// Package config reads vpnauthz's configuration from the environment and the
// optional policy file, and rejects every invalid value before any API call.
package config

import (
	"log/slog"

	"vpnauthz/internal/policy"
	"vpnauthz/internal/target"
)

// Config is the validated configuration of the function.
type Config struct {
	Targets         []target.Target // SCAN_TARGETS, duplicates collapsed
	Policy          policy.Policy
	SLSEndpoint     string // SLS_ENDPOINT; empty: https://REGION.log.aliyuncs.com for the function's region
	SLSProject      string
	SLSLogstore     string
	VPCEndpoint     string // VPC_ENDPOINT as given; empty: the SDK's regional endpoint
	VPCAPIRate      float64
	ScanConcurrency int
	LogLevel        slog.Level
	HTTPAuthToken   string
}
