package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vpnauthz/internal/accounts"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/statestore"
	"vpnauthz/internal/target"
)

func envOf(vars map[string]string) Env {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

// noFile fails the test if the policy file is read when none is configured.
func noFile(t *testing.T) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		t.Helper()
		t.Errorf("policy file %q read unexpectedly", path)
		return nil, fs.ErrNotExist
	}
}

func load(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	return Load(envOf(vars), os.ReadFile)
}

// messages returns the message of each joined error, checking each is an *Error.
func messages(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	for _, e := range unjoin(err) {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %q is not a *config.Error", e)
		}
		out = append(out, e.Error())
	}
	return out
}

func TestLoadDefaults(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"nothing set": {},
		"all empty": {
			EnvScanTargets: "", EnvTrustedAccountIDs: "", EnvTrustedCENIDs: "", EnvMaxAuthorizationAgeDays: "",
			EnvPolicyFile: "", EnvSLSEndpoint: "", EnvSLSProject: "", EnvSLSLogstore: "", EnvVPCEndpoint: "",
			EnvVPCAPIRate: "", EnvScanConcurrency: "", EnvLogLevel: "", EnvHTTPAuthToken: "",
			EnvAccounts: "", EnvAccountsExclude: "", EnvMemberRoleName: "", EnvMemberRoleExternalID: "",
			EnvTrustOrganization: "", EnvFanoutAccountsPerInvocation: "", EnvStateStore: "",
		},
		"white space only": {EnvScanTargets: " \n", EnvVPCAPIRate: "  ", EnvLogLevel: "\t"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(envOf(vars), noFile(t))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := &Config{VPCAPIRate: 10, ScanConcurrency: 8, LogLevel: slog.LevelInfo,
				MemberRoleName: "vpnauthz-auditor", FanoutAccountsPerInvocation: 50}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("Load mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadValidValues(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(c *Config) any
		want       any
	}{
		{EnvScanTargets, "cn-hangzhou:vco-bbbb2222, cn-beijing:*\ncn-hangzhou:vco-aaaa1111 cn-beijing:vco-cccc3333,cn-hangzhou:vco-aaaa1111",
			func(c *Config) any { return c.Targets },
			[]target.Target{{Region: "cn-beijing", ConnectionID: "*"}, {Region: "cn-hangzhou", ConnectionID: "vco-aaaa1111"}, {Region: "cn-hangzhou", ConnectionID: "vco-bbbb2222"}}},
		{EnvTrustedAccountIDs, "1210123456123456, 1310123456123456 1210123456123456\t12345678901234567890",
			func(c *Config) any { return c.Policy.TrustedAccountIDs },
			[]string{"1210123456123456", "1310123456123456", "12345678901234567890"}},
		{EnvTrustedAccountIDs, "7", func(c *Config) any { return c.Policy.TrustedAccountIDs }, []string{"7"}},
		{EnvTrustedCENIDs, "cen-vv8h0t3klfpaae01,cen-partner01",
			func(c *Config) any { return c.Policy.TrustedCENIDs },
			[]string{"cen-vv8h0t3klfpaae01", "cen-partner01"}},
		{EnvMaxAuthorizationAgeDays, "0", func(c *Config) any { return c.Policy.MaxAuthorizationAgeDays }, 0},
		{EnvMaxAuthorizationAgeDays, "365", func(c *Config) any { return c.Policy.MaxAuthorizationAgeDays }, 365},
		{EnvMaxAuthorizationAgeDays, " 36500 ", func(c *Config) any { return c.Policy.MaxAuthorizationAgeDays }, 36500},
		{EnvSLSEndpoint, "cn-hangzhou.log.aliyuncs.com", func(c *Config) any { return c.SLSEndpoint.String() }, "https://cn-hangzhou.log.aliyuncs.com"},
		{EnvSLSEndpoint, "https://cn-hangzhou-intranet.log.aliyuncs.com/", func(c *Config) any { return c.SLSEndpoint.String() }, "https://cn-hangzhou-intranet.log.aliyuncs.com"},
		{EnvSLSEndpoint, "HTTPS://Example.COM:8443", func(c *Config) any { return c.SLSEndpoint.String() }, "https://example.com:8443"},
		{EnvSLSEndpoint, "http://127.0.0.1:9000", func(c *Config) any { return c.SLSEndpoint.String() }, "http://127.0.0.1:9000"},
		{EnvSLSEndpoint, "http://127.8.9.10:9000", func(c *Config) any { return c.SLSEndpoint.String() }, "http://127.8.9.10:9000"},
		{EnvSLSEndpoint, "http://localhost:9000", func(c *Config) any { return c.SLSEndpoint.String() }, "http://localhost:9000"},
		{EnvSLSEndpoint, "http://[::1]:9000", func(c *Config) any { return c.SLSEndpoint.String() }, "http://[::1]:9000"},
		{EnvSLSEndpoint, "127.0.0.1:9000", func(c *Config) any { return c.SLSEndpoint.String() }, "http://127.0.0.1:9000"},
		{EnvSLSEndpoint, "[2001:db8::1]:443", func(c *Config) any { return c.SLSEndpoint.String() }, "https://[2001:db8::1]:443"},
		{EnvSLSProject, "vpnauthz-findings", func(c *Config) any { return c.SLSProject }, "vpnauthz-findings"},
		{EnvSLSProject, "abc", func(c *Config) any { return c.SLSProject }, "abc"},
		{EnvSLSLogstore, "vpn_findings-1", func(c *Config) any { return c.SLSLogstore }, "vpn_findings-1"},
		{EnvVPCEndpoint, "vpc.cn-hangzhou.aliyuncs.com", func(c *Config) any { return c.VPCEndpoint.String() }, "https://vpc.cn-hangzhou.aliyuncs.com"},
		{EnvVPCEndpoint, "http://127.0.0.1:8080", func(c *Config) any { return c.VPCEndpoint.String() }, "http://127.0.0.1:8080"},
		{EnvVPCEndpoint, "https://vpc-vpc.{region}.example.com", func(c *Config) any { return c.VPCEndpoint.String() }, "https://vpc-vpc.{region}.example.com"},
		{EnvVPCEndpoint, "cn-shanghai=vpc-b.example.com, cn-hangzhou=vpc-a.example.com https://vpc.{region}.example.com",
			func(c *Config) any { return c.VPCEndpoint.String() },
			"cn-hangzhou=https://vpc-a.example.com,cn-shanghai=https://vpc-b.example.com,https://vpc.{region}.example.com"},
		{EnvSLSEndpoint, "intranet", func(c *Config) any { return c.SLSEndpointFor("cn-beijing").URL() }, "https://cn-beijing-intranet.log.aliyuncs.com"},
		{EnvSLSEndpoint, "Public", func(c *Config) any { return c.SLSEndpointFor("cn-beijing").URL() }, "https://cn-beijing.log.aliyuncs.com"},
		{EnvSTSEndpoint, "http://127.0.0.1:7001", func(c *Config) any { return c.STSEndpoint.String() }, "http://127.0.0.1:7001"},
		{EnvResourceManagerEndpoint, "resourcemanager.aliyuncs.com", func(c *Config) any { return c.ResourceManagerEndpoint.String() }, "https://resourcemanager.aliyuncs.com"},
		{EnvFCEndpoint, "https://1210123456123456.{region}.fc.aliyuncs.com", func(c *Config) any { return c.FCEndpoint.String() }, "https://1210123456123456.{region}.fc.aliyuncs.com"},
		{EnvTablestoreEndpoint, "127.0.0.1:7002", func(c *Config) any { return c.TablestoreEndpoint.String() }, "http://127.0.0.1:7002"},
		{EnvVPCAPIRate, "0.5", func(c *Config) any { return c.VPCAPIRate }, 0.5},
		{EnvVPCAPIRate, "1000", func(c *Config) any { return c.VPCAPIRate }, 1000.0},
		{EnvVPCAPIRate, "1e1", func(c *Config) any { return c.VPCAPIRate }, 10.0},
		{EnvScanConcurrency, "1", func(c *Config) any { return c.ScanConcurrency }, 1},
		{EnvScanConcurrency, "256", func(c *Config) any { return c.ScanConcurrency }, 256},
		{EnvLogLevel, "debug", func(c *Config) any { return c.LogLevel }, slog.LevelDebug},
		{EnvLogLevel, "INFO", func(c *Config) any { return c.LogLevel }, slog.LevelInfo},
		{EnvLogLevel, "Warn", func(c *Config) any { return c.LogLevel }, slog.LevelWarn},
		{EnvLogLevel, "error", func(c *Config) any { return c.LogLevel }, slog.LevelError},
		{EnvHTTPAuthToken, "s3cr3t token!", func(c *Config) any { return c.HTTPAuthToken }, "s3cr3t token!"},
		{EnvHTTPAuthToken, " s3cr3t\n", func(c *Config) any { return c.HTTPAuthToken }, "s3cr3t"},
		{EnvAccounts, "resource-directory", func(c *Config) any { return c.Accounts }, accounts.Spec{Mode: accounts.Directory}},
		{EnvAccounts, " Resource-Directory ", func(c *Config) any { return c.Accounts }, accounts.Spec{Mode: accounts.Directory}},
		{EnvAccounts, "1210123456123456, 1310123456123456\n1210123456123456", func(c *Config) any { return c.Accounts },
			accounts.Spec{Mode: accounts.List, IDs: []string{"1210123456123456", "1310123456123456"}}},
		{EnvAccountsExclude, "1210123456123456 1310123456123456", func(c *Config) any { return c.AccountsExclude },
			[]string{"1210123456123456", "1310123456123456"}},
		{EnvMemberRoleName, "Audit.Role-1", func(c *Config) any { return c.MemberRoleName }, "Audit.Role-1"},
		{EnvMemberRoleExternalID, "org-1234:vpnauthz", func(c *Config) any { return c.MemberRoleExternalID }, "org-1234:vpnauthz"},
		{EnvTrustOrganization, "true", func(c *Config) any { return c.TrustOrganization }, true},
		{EnvTrustOrganization, "FALSE", func(c *Config) any { return c.TrustOrganization }, false},
		{EnvTrustOrganization, "1", func(c *Config) any { return c.TrustOrganization }, true},
		{EnvFanoutAccountsPerInvocation, "1", func(c *Config) any { return c.FanoutAccountsPerInvocation }, 1},
		{EnvFanoutAccountsPerInvocation, "1000", func(c *Config) any { return c.FanoutAccountsPerInvocation }, 1000},
		{EnvStateStore, "tablestore://vpnauthz-state/findings", func(c *Config) any { return c.StateStore },
			statestore.Location{Instance: "vpnauthz-state", Table: "findings"}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c, err := Load(envOf(map[string]string{tt.key: tt.value}), noFile(t))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, tt.check(c)); diff != "" {
				t.Errorf("%s=%q mismatch (-want +got):\n%s", tt.key, tt.value, diff)
			}
		})
	}
}

func TestLoadInvalidValues(t *testing.T) {
	tests := []struct {
		key, value string
		want       []string // every message, in order
	}{
		{EnvScanTargets, "cn-hangzhou:vpn-1", []string{`SCAN_TARGETS: "cn-hangzhou:vpn-1": connection id must look like vco-…`}},
		{EnvScanTargets, "cn-hangzhou:* evil.com:vco-abcd1234, cn-beijing", []string{
			`SCAN_TARGETS: "evil.com:vco-abcd1234": region must be lower-case letters and digits in hyphen-joined words, like cn-hangzhou, at most 40 characters`,
			`SCAN_TARGETS: "cn-beijing": target must be [UID/]REGION:vco-… or [UID/]REGION:*`,
		}},
		{EnvTrustedAccountIDs, "1210123456123456,12a, 0123 123456789012345678901", []string{
			`TRUSTED_ACCOUNT_IDS: "12a": account UID must be 1 to 20 decimal digits without a leading zero`,
			`TRUSTED_ACCOUNT_IDS: "0123": account UID must be 1 to 20 decimal digits without a leading zero`,
			`TRUSTED_ACCOUNT_IDS: "123456789012345678901": account UID must be 1 to 20 decimal digits without a leading zero`,
		}},
		{EnvTrustedAccountIDs, "-1", []string{`TRUSTED_ACCOUNT_IDS: "-1": account UID must be 1 to 20 decimal digits without a leading zero`}},
		{EnvTrustedCENIDs, "cen-ok01 CEN-ABC1 vpc-abcd1234", []string{
			`TRUSTED_CEN_IDS: "CEN-ABC1": CEN instance id must look like cen-… (lower-case letters and digits)`,
			`TRUSTED_CEN_IDS: "vpc-abcd1234": CEN instance id must look like cen-… (lower-case letters and digits)`,
		}},
		{EnvMaxAuthorizationAgeDays, "-1", []string{`MAX_AUTHORIZATION_AGE_DAYS: "-1": must be a whole number of days from 0 (rule off) to 36500`}},
		{EnvMaxAuthorizationAgeDays, "36501", []string{`MAX_AUTHORIZATION_AGE_DAYS: "36501": must be a whole number of days from 0 (rule off) to 36500`}},
		{EnvMaxAuthorizationAgeDays, "1.5", []string{`MAX_AUTHORIZATION_AGE_DAYS: "1.5": must be a whole number of days from 0 (rule off) to 36500`}},
		{EnvMaxAuthorizationAgeDays, "a year", []string{`MAX_AUTHORIZATION_AGE_DAYS: "a year": must be a whole number of days from 0 (rule off) to 36500`}},
		{EnvSLSEndpoint, "http://cn-hangzhou.log.aliyuncs.com", []string{`SLS_ENDPOINT: "http://cn-hangzhou.log.aliyuncs.com": http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://`}},
		{EnvSLSEndpoint, "http://10.0.0.1:9000", []string{`SLS_ENDPOINT: "http://10.0.0.1:9000": http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://`}},
		{EnvSLSEndpoint, "http://localhost.evil.com", []string{`SLS_ENDPOINT: "http://localhost.evil.com": http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://`}},
		{EnvSLSEndpoint, "ftp://example.com", []string{`SLS_ENDPOINT: "ftp://example.com": must be https://HOST[:PORT] or HOST[:PORT]; the scheme must be https`}},
		{EnvSLSEndpoint, "https://example.com/logs", []string{`SLS_ENDPOINT: "https://example.com/logs": must be https://HOST[:PORT] or HOST[:PORT]; no path, query or user`}},
		{EnvSLSEndpoint, "https://user:secret@example.com", []string{`SLS_ENDPOINT: must be https://HOST[:PORT] or HOST[:PORT]; no path, query or user`}},
		{EnvSLSEndpoint, "https://", []string{`SLS_ENDPOINT: "https://": must be https://HOST[:PORT] or HOST[:PORT]; the host is missing`}},
		{EnvSLSEndpoint, "example.com:0", []string{`SLS_ENDPOINT: "example.com:0": must be https://HOST[:PORT] or HOST[:PORT]; the port must be a number from 1 to 65535`}},
		{EnvSLSEndpoint, "example.com:65536", []string{`SLS_ENDPOINT: "example.com:65536": must be https://HOST[:PORT] or HOST[:PORT]; the port must be a number from 1 to 65535`}},
		{EnvSLSEndpoint, "example.com:http", []string{`SLS_ENDPOINT: "example.com:http": must be https://HOST[:PORT] or HOST[:PORT]; the port must be a number from 1 to 65535`}},
		{EnvSLSEndpoint, "::1:9000", []string{`SLS_ENDPOINT: "::1:9000": must be https://HOST[:PORT] or HOST[:PORT]; an IPv6 address must be in brackets, like [::1]:9000`}},
		{EnvSLSEndpoint, "exa_mple.com", []string{`SLS_ENDPOINT: "exa_mple.com": must be https://HOST[:PORT] or HOST[:PORT]; the host must be a DNS name or an IP address`}},
		{EnvSLSEndpoint, ":9000", []string{`SLS_ENDPOINT: ":9000": must be https://HOST[:PORT] or HOST[:PORT]; the host must be a DNS name or an IP address`}},
		{EnvSLSProject, "AB", []string{`SLS_PROJECT: "AB": project name must be 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit`}},
		{EnvSLSProject, "my_project", []string{`SLS_PROJECT: "my_project": project name must be 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit`}},
		{EnvSLSProject, "-abc", []string{`SLS_PROJECT: "-abc": project name must be 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit`}},
		{EnvSLSProject, strings.Repeat("a", 64), []string{`SLS_PROJECT: "` + strings.Repeat("a", 64) + `": project name must be 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit`}},
		{EnvSLSLogstore, "findings_", []string{`SLS_LOGSTORE: "findings_": logstore name must be 3 to 63 lower-case letters, digits, hyphens and underscores, starting and ending with a letter or digit`}},
		{EnvSLSLogstore, "a/b", []string{`SLS_LOGSTORE: "a/b": logstore name must be 3 to 63 lower-case letters, digits, hyphens and underscores, starting and ending with a letter or digit`}},
		{EnvVPCEndpoint, "http://vpc.example.com", []string{`VPC_ENDPOINT: "http://vpc.example.com": http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://`}},
		{EnvVPCEndpoint, "cn-hangzhou=vpc-a.example.com cn-hangzhou=vpc-b.example.com", []string{`VPC_ENDPOINT: "cn-hangzhou=vpc-b.example.com": region cn-hangzhou is given twice`}},
		{EnvVPCEndpoint, "cn-hangzhou=http://vpc-a.example.com", []string{`VPC_ENDPOINT: "cn-hangzhou=http://vpc-a.example.com": http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://`}},
		{EnvVPCEndpoint, "https://vpc.{region}.example.com/v", []string{`VPC_ENDPOINT: "https://vpc.{region}.example.com/v": must be https://HOST[:PORT] or HOST[:PORT]; no path, query or user (with {region} replaced by a region)`}},
		{EnvVPCEndpoint, "vpc-a.example.com vpc-b.example.com", []string{`VPC_ENDPOINT: "vpc-b.example.com": only one entry may go without REGION=: it is the endpoint of every region not listed`}},
		{EnvSTSEndpoint, "http://sts.aliyuncs.com", []string{`STS_ENDPOINT: "http://sts.aliyuncs.com": http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://`}},
		{EnvResourceManagerEndpoint, "ftp://x.example.com", []string{`RESOURCEMANAGER_ENDPOINT: "ftp://x.example.com": must be https://HOST[:PORT] or HOST[:PORT]; the scheme must be https`}},
		{EnvFCEndpoint, "https://u:pw@fc.example.com", []string{`FC_ENDPOINT: must be https://HOST[:PORT] or HOST[:PORT]; no path, query or user`}},
		{EnvTablestoreEndpoint, "https://ots.example.com:0", []string{`TABLESTORE_ENDPOINT: "https://ots.example.com:0": must be https://HOST[:PORT] or HOST[:PORT]; the port must be a number from 1 to 65535`}},
		{EnvVPCEndpoint, "https://vpc.example.com?x=1", []string{`VPC_ENDPOINT: "https://vpc.example.com?x=1": must be https://HOST[:PORT] or HOST[:PORT]; no path, query or user`}},
		{EnvVPCAPIRate, "0", []string{`VPC_API_RATE: "0": must be a number of calls per second above 0 and at most 1000`}},
		{EnvVPCAPIRate, "-5", []string{`VPC_API_RATE: "-5": must be a number of calls per second above 0 and at most 1000`}},
		{EnvVPCAPIRate, "1000.5", []string{`VPC_API_RATE: "1000.5": must be a number of calls per second above 0 and at most 1000`}},
		{EnvVPCAPIRate, "NaN", []string{`VPC_API_RATE: "NaN": must be a number of calls per second above 0 and at most 1000`}},
		{EnvVPCAPIRate, "fast", []string{`VPC_API_RATE: "fast": must be a number of calls per second above 0 and at most 1000`}},
		{EnvScanConcurrency, "0", []string{`SCAN_CONCURRENCY: "0": must be a whole number from 1 to 256`}},
		{EnvScanConcurrency, "257", []string{`SCAN_CONCURRENCY: "257": must be a whole number from 1 to 256`}},
		{EnvScanConcurrency, "2.0", []string{`SCAN_CONCURRENCY: "2.0": must be a whole number from 1 to 256`}},
		{EnvLogLevel, "verbose", []string{`LOG_LEVEL: "verbose": must be debug, info, warn or error`}},
		{EnvLogLevel, "warning", []string{`LOG_LEVEL: "warning": must be debug, info, warn or error`}},
		{EnvHTTPAuthToken, " \t", []string{`HTTP_AUTH_TOKEN: must not be only white space`}},
		{EnvAccounts, "1210123456123456,12a", []string{`ACCOUNTS: "12a" is not an account UID (decimal digits)`}},
		{EnvAccounts, "resource-directory 1210123456123456", []string{`ACCOUNTS: "resource-directory" cannot be combined with account UIDs`}},
		{EnvAccounts, "0123", []string{`ACCOUNTS: "0123": account UID must be 1 to 20 decimal digits without a leading zero`}},
		{EnvAccountsExclude, "1210123456123456 x1", []string{`ACCOUNTS_EXCLUDE: "x1" is not an account UID (decimal digits)`}},
		{EnvAccountsExclude, "resource-directory", []string{`ACCOUNTS_EXCLUDE: "resource-directory" cannot be combined with account UIDs`}},
		{EnvMemberRoleName, "role/auditor", []string{`MEMBER_ROLE_NAME: "role/auditor": a RAM role name is 1 to 64 letters, digits, '.' or '-'`}},
		{EnvMemberRoleName, strings.Repeat("r", 65), []string{`MEMBER_ROLE_NAME: "` + strings.Repeat("r", 65) + `": a RAM role name is 1 to 64 letters, digits, '.' or '-'`}},
		{EnvMemberRoleExternalID, "x", []string{`MEMBER_ROLE_EXTERNAL_ID: want 2 to 1224 characters of letters, digits and = , . @ : / - _ (got 1 characters)`}},
		{EnvTrustOrganization, "yes", []string{`TRUST_ORGANIZATION: "yes": must be true or false`}},
		{EnvFanoutAccountsPerInvocation, "0", []string{`FANOUT_ACCOUNTS_PER_INVOCATION: "0": must be a whole number of accounts from 1 to 1000`}},
		{EnvFanoutAccountsPerInvocation, "-3", []string{`FANOUT_ACCOUNTS_PER_INVOCATION: "-3": must be a whole number of accounts from 1 to 1000`}},
		{EnvFanoutAccountsPerInvocation, "1001", []string{`FANOUT_ACCOUNTS_PER_INVOCATION: "1001": must be a whole number of accounts from 1 to 1000`}},
		{EnvFanoutAccountsPerInvocation, "many", []string{`FANOUT_ACCOUNTS_PER_INVOCATION: "many": must be a whole number of accounts from 1 to 1000`}},
		{EnvStateStore, "ots://inst/table", []string{`STATE_STORE: "ots://inst/table": scheme "ots" is not supported; want tablestore://INSTANCE/TABLE`}},
		{EnvStateStore, "tablestore://inst", []string{`STATE_STORE: "tablestore://inst": no table; want tablestore://INSTANCE/TABLE`}},
		{EnvStateStore, "tablestore://ak:secret@inst/table", []string{`STATE_STORE: holds a user or password (value not shown): want tablestore://INSTANCE/TABLE; the store is reached with the function's credentials`}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c, err := Load(envOf(map[string]string{tt.key: tt.value}), noFile(t))
			if err == nil {
				t.Fatalf("Load(%s=%q) = %v, want an error", tt.key, tt.value, c)
			}
			if c != nil {
				t.Errorf("Load returned a config along with an error")
			}
			if diff := cmp.Diff(tt.want, messages(t, err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			var ce *Error
			if errors.As(err, &ce) && ce.Variable != tt.key {
				t.Errorf("Error.Variable = %q, want %q", ce.Variable, tt.key)
			}
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, err := load(t, map[string]string{
		EnvScanTargets:     "cn-hangzhou:vpn-1",
		EnvVPCAPIRate:      "0",
		EnvLogLevel:        "loud",
		EnvPolicyFile:      "testdata/does-not-exist.yaml",
		EnvScanConcurrency: "8",
	})
	var vars []string
	for _, e := range unjoin(err) {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("%v is not a *Error", e)
		}
		vars = append(vars, ce.Variable)
	}
	want := []string{EnvPolicyFile, EnvScanTargets, EnvVPCAPIRate, EnvLogLevel}
	if diff := cmp.Diff(want, vars); diff != "" {
		t.Errorf("variables in error mismatch (-want +got):\n%s", diff)
	}
}

func TestHTTPAuthTokenNeverEchoed(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	c, err := load(t, map[string]string{EnvHTTPAuthToken: token, EnvSLSProject: "my-project"})
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c, "value", *c)
	for name, s := range map[string]string{
		"String":      c.String(),
		"%v pointer":  fmt.Sprintf("%v", c),
		"%+v value":   fmt.Sprintf("%+v", *c),
		"%#v":         fmt.Sprintf("%#v", *c),
		"slog":        logged.String(),
		"Error value": (&Error{Variable: EnvHTTPAuthToken, Value: token, Reason: "bad"}).Error(),
	} {
		if strings.Contains(s, token) {
			t.Errorf("%s shows the token: %s", name, s)
		}
	}
	if !strings.Contains(c.String(), "http_auth_token=set") || !strings.Contains(c.String(), "sls_project=my-project") {
		t.Errorf("String() = %q, want it to say the token is set and name the project", c.String())
	}
}

// TestOrganisationSettingsLogged: the organisation's settings show in the
// configuration's log form, the external id only as set or unset.
func TestOrganisationSettingsLogged(t *testing.T) {
	const externalID = "org-external-7f3a9c"
	c, err := load(t, map[string]string{
		EnvAccounts: "resource-directory", EnvAccountsExclude: "1310123456123456", EnvMemberRoleName: "auditor",
		EnvMemberRoleExternalID: externalID, EnvTrustOrganization: "true", EnvFanoutAccountsPerInvocation: "20",
		EnvStateStore: "tablestore://vpnauthz-state/findings",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.NeedsDirectory() || !c.Organisation() {
		t.Errorf("NeedsDirectory %v, Organisation %v: want both", c.NeedsDirectory(), c.Organisation())
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c)
	for name, s := range map[string]string{
		"String": c.String(), "%+v": fmt.Sprintf("%+v", *c), "%#v": fmt.Sprintf("%#v", *c), "slog": logged.String(),
		"Error": (&Error{Variable: EnvMemberRoleExternalID, Value: externalID, Reason: "bad"}).Error(),
	} {
		if strings.Contains(s, externalID) {
			t.Errorf("%s shows the external id: %s", name, s)
		}
	}
	for _, want := range []string{"accounts=resource-directory", "accounts_exclude=1310123456123456", "member_role_name=auditor",
		"member_role_external_id=set", "trust_organization=true", "fanout_accounts_per_invocation=20",
		"state_store=tablestore://vpnauthz-state/findings"} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("String() = %q, want %s", c.String(), want)
		}
	}
	own, err := load(t, map[string]string{EnvAccounts: "1210123456123456"})
	if err != nil {
		t.Fatal(err)
	}
	if own.NeedsDirectory() || !own.Organisation() || !strings.Contains(own.String(), "accounts=1210123456123456 ") {
		t.Errorf("a list of accounts: NeedsDirectory %v, Organisation %v, %s", own.NeedsDirectory(), own.Organisation(), own)
	}
}

func TestPolicyFile(t *testing.T) {
	c, err := load(t, map[string]string{EnvPolicyFile: "testdata/policy-full.yaml"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := policy.Policy{
		TrustedAccountIDs:       []string{"1210123456123456", "1310123456123456"},
		TrustedCENIDs:           []string{"cen-vv8h0t3klfpaae01"},
		MaxAuthorizationAgeDays: 365,
		Exceptions: []policy.Exception{
			{
				VpnConnectionID: "vco-p0w2jpkhi2eeop6q601",
				BindUID:         "1999000011112222",
				BindInstance:    "cen-partner01",
				Rules:           []string{"untrusted-account", "untrusted-cen"},
				Reason:          "partner migration, ticket NET-123",
				Expires:         time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC),
			},
			{
				VpnConnectionID: "*",
				BindInstance:    "cen-partner01",
				Reason:          "shared transit router",
				Expires:         time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
			},
		},
	}
	if diff := cmp.Diff(want, c.Policy); diff != "" {
		t.Errorf("policy mismatch (-want +got):\n%s", diff)
	}
	if c.PolicyFile != "testdata/policy-full.yaml" {
		t.Errorf("PolicyFile = %q", c.PolicyFile)
	}
}

func TestEnvOverridesPolicyFile(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want policy.Policy
	}{
		{
			name: "empty variables keep the file's values",
			env:  map[string]string{EnvTrustedAccountIDs: "", EnvTrustedCENIDs: " ", EnvMaxAuthorizationAgeDays: ""},
			want: policy.Policy{TrustedAccountIDs: []string{"1210123456123456", "1310123456123456"}, TrustedCENIDs: []string{"cen-vv8h0t3klfpaae01"}, MaxAuthorizationAgeDays: 365},
		},
		{
			name: "set variables replace them",
			env:  map[string]string{EnvTrustedAccountIDs: "1555000000000000", EnvTrustedCENIDs: "cen-other001", EnvMaxAuthorizationAgeDays: "0"},
			want: policy.Policy{TrustedAccountIDs: []string{"1555000000000000"}, TrustedCENIDs: []string{"cen-other001"}, MaxAuthorizationAgeDays: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env[EnvPolicyFile] = "testdata/policy-full.yaml"
			c, err := load(t, tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := c.Policy
			if len(got.Exceptions) != 2 {
				t.Errorf("%d exceptions, want the file's 2", len(got.Exceptions))
			}
			got.Exceptions = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("policy mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyFileUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "policy.yaml")
	tests := []struct {
		name     string
		path     string
		readFile func(string) ([]byte, error)
		want     string
	}{
		{"missing", missing, os.ReadFile, fmt.Sprintf("POLICY_FILE: %q: cannot read the policy file: no such file or directory", missing)},
		{"directory", "testdata", os.ReadFile, `POLICY_FILE: "testdata": cannot read the policy file: is a directory`},
		{"permission", "/etc/vpnauthz/policy.yaml", func(p string) ([]byte, error) {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
		}, `POLICY_FILE: "/etc/vpnauthz/policy.yaml": cannot read the policy file: permission denied`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(envOf(map[string]string{EnvPolicyFile: tt.path}), tt.readFile)
			if diff := cmp.Diff([]string{tt.want}, messages(t, err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyFileInvalid(t *testing.T) {
	_, err := load(t, map[string]string{EnvPolicyFile: "testdata/policy-invalid.yaml"})
	const prefix = `POLICY_FILE: "testdata/policy-invalid.yaml": `
	want := []string{
		prefix + `trusted_account_ids[0] (line 1): "12a": account UID must be 1 to 20 decimal digits without a leading zero`,
		prefix + `trusted_account_ids[1] (line 1): "0123": account UID must be 1 to 20 decimal digits without a leading zero`,
		prefix + `trusted_cen_ids (line 2): must be a list, like [a, b]`,
		prefix + `max_authorization_age_days (line 3): "-1": must be a whole number of days from 0 (rule off) to 36500`,
		prefix + `exceptions[0].vpn_connection_id (line 5): "vpn-1": must be a connection id like vco-… or "*"`,
		prefix + `exceptions[0].rules[0] (line 6): "read-authorizations": an ERROR finding cannot be suppressed; fix the read instead`,
		prefix + `exceptions[0].rules[1] (line 6): "untrusted-acount": unknown rule; the rules are untrusted-account, unexpected-product, untrusted-cen, stale-authorization`,
		prefix + `exceptions[0].expires (line 8): "2027-13-01": must be a date, YYYY-MM-DD`,
		prefix + `exceptions[0].reason (line 5): required: say why the exception exists, e.g. a ticket`,
		prefix + `exceptions[1] (line 9): an exception for every connection must name bind_uid, bind_instance or rules; otherwise it would suppress every finding`,
		prefix + `exceptions[2].bind_instance (line 13): "CEN-X": CEN instance id must look like cen-… (lower-case letters and digits)`,
		prefix + `exceptions[2].expire (line 14): unknown key; the keys are vpn_connection_id, bind_uid, bind_instance, rules, reason, expires`,
		prefix + `exceptions[2].vpn_connection_id (line 12): required: a connection id like vco-… or "*" for every connection`,
		prefix + `exceptions[2].reason (line 12): required: say why the exception exists, e.g. a ticket`,
		prefix + `exceptions[2].expires (line 12): required: the last day the exception holds, YYYY-MM-DD`,
	}
	if diff := cmp.Diff(want, messages(t, err)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

func TestSLSEndpointFor(t *testing.T) {
	tests := []struct {
		endpoint, region, want string
	}{
		{"", "cn-hangzhou", "https://cn-hangzhou.log.aliyuncs.com"},
		{"", "ap-southeast-1", "https://ap-southeast-1.log.aliyuncs.com"},
		{"", "evil.com/x", ""},
		{"", "", ""},
		{"http://127.0.0.1:9000", "cn-hangzhou", "http://127.0.0.1:9000"},
		{"intranet", "cn-shanghai", "https://cn-shanghai-intranet.log.aliyuncs.com"},
		{"intranet", "evil.com/x", ""},
		{"cn-hangzhou=http://127.0.0.1:9000", "cn-hangzhou", "http://127.0.0.1:9000"},
		{"cn-hangzhou=http://127.0.0.1:9000", "cn-beijing", "https://cn-beijing.log.aliyuncs.com"},
	}
	for _, tt := range tests {
		c, err := Load(envOf(map[string]string{EnvSLSEndpoint: tt.endpoint}), noFile(t))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.SLSEndpointFor(tt.region).URL(); got != tt.want {
			t.Errorf("SLSEndpointFor(%q) with SLS_ENDPOINT %q = %q, want %q", tt.region, tt.endpoint, got, tt.want)
		}
	}
}
func TestDeliveryConfigured(t *testing.T) {
	tests := []struct {
		project, logstore string
		wantVar           string // empty: configured
	}{
		{"vpnauthz", "findings", ""},
		{"", "findings", "SLS_PROJECT"},
		{"vpnauthz", "", "SLS_LOGSTORE"},
		{"", "", "SLS_PROJECT, SLS_LOGSTORE"},
	}
	for _, tt := range tests {
		err := (&Config{SLSProject: tt.project, SLSLogstore: tt.logstore}).DeliveryConfigured()
		if tt.wantVar == "" {
			if err != nil {
				t.Errorf("project %q, logstore %q: %v", tt.project, tt.logstore, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Variable != tt.wantVar {
			t.Errorf("project %q, logstore %q: error %v, want a *Error naming %s", tt.project, tt.logstore, err, tt.wantVar)
			continue
		}
		if want := tt.wantVar + ": must be set to deliver findings to Log Service"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
}

func TestFromEnviron(t *testing.T) {
	t.Setenv(EnvScanTargets, "cn-hangzhou:*")
	t.Setenv(EnvScanConcurrency, "3")
	t.Setenv(EnvPolicyFile, "")
	c, err := FromEnviron()
	if err != nil {
		t.Fatalf("FromEnviron: %v", err)
	}
	if len(c.Targets) != 1 || c.Targets[0].String() != "cn-hangzhou:*" || c.ScanConcurrency != 3 {
		t.Errorf("FromEnviron = %v", c)
	}
}

func TestPolicyFileReadIsBounded(t *testing.T) {
	// A POLICY_FILE pointing at an endless device is refused as too large,
	// not read until memory runs out.
	t.Setenv(EnvPolicyFile, "/dev/zero")
	_, err := FromEnviron()
	if err == nil || !strings.Contains(err.Error(), "POLICY_FILE") {
		t.Fatalf("err = %v, want a POLICY_FILE error", err)
	}
}
