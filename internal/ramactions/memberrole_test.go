package ramactions

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// memberActions are what a member role may do: the scan's reads, nothing else.
func memberActions() []string { return Names(For([]Feature{Scan}, Function)) }

type memberPolicy struct {
	Version   string `yaml:"Version"`
	Statement []struct {
		Sid      string   `yaml:"Sid"`
		Effect   string   `yaml:"Effect"`
		Action   []string `yaml:"Action"`
		Resource []string `yaml:"Resource"`
	} `yaml:"Statement"`
}

type trustPolicy struct {
	Version   string `yaml:"Version"`
	Statement []struct {
		Effect    string `yaml:"Effect"`
		Action    string `yaml:"Action"`
		Principal struct {
			RAM []any `yaml:"RAM"`
		} `yaml:"Principal"`
		Condition map[string]map[string]any `yaml:"Condition"`
	} `yaml:"Statement"`
}

func readScript(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func strictJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not the expected document: %v\n%s", err, data)
	}
}

func checkMemberPolicy(t *testing.T, where string, p memberPolicy) {
	t.Helper()
	var actions []string
	for _, s := range p.Statement {
		if s.Effect != "Allow" || len(s.Resource) == 0 {
			t.Errorf("%s: statement %+v", where, s)
		}
		for _, r := range s.Resource {
			if !strings.HasPrefix(r, "acs:vpc:") {
				t.Errorf("%s: resource %q outside the VPC API", where, r)
			}
		}
		actions = append(actions, s.Action...)
	}
	slices.Sort(actions)
	if p.Version != "1" || !slices.Equal(actions, memberActions()) {
		t.Errorf("%s: version %q, actions %v, want exactly %v", where, p.Version, actions, memberActions())
	}
}

func checkTrust(t *testing.T, where string, tp trustPolicy, principal any, externalID any) {
	t.Helper()
	if tp.Version != "1" || len(tp.Statement) != 1 {
		t.Fatalf("%s: %+v", where, tp)
	}
	s := tp.Statement[0]
	if s.Effect != "Allow" || s.Action != "sts:AssumeRole" {
		t.Errorf("%s: %s %s, want Allow sts:AssumeRole", where, s.Effect, s.Action)
	}
	if len(s.Principal.RAM) != 1 || !equalYAML(s.Principal.RAM[0], principal) {
		t.Errorf("%s: principal %v, want only the function's role %v", where, s.Principal.RAM, principal)
	}
	if len(s.Condition) != 1 || len(s.Condition["StringEquals"]) != 1 || !equalYAML(s.Condition["StringEquals"]["sts:ExternalId"], externalID) {
		t.Errorf("%s: condition %v, want StringEquals sts:ExternalId %v and nothing else", where, s.Condition, externalID)
	}
}

func equalYAML(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return bytes.Equal(x, y)
}

// TestMemberRoleDocuments: the member role's RAM policy allows only the two
// VPC reads the scan makes, and its trust policy lets only the scanning
// account's function role assume it, only with the ExternalId; the ROS
// template deploys exactly those documents.
func TestMemberRoleDocuments(t *testing.T) {
	var p memberPolicy
	strictJSON(t, readScript(t, "member-role/policy.json"), &p)
	checkMemberPolicy(t, "policy.json", p)

	var tp trustPolicy
	strictJSON(t, readScript(t, "member-role/trust-policy.json"), &tp)
	checkTrust(t, "trust-policy.json", tp, "acs:ram::SCANNING_ACCOUNT_ID:role/FUNCTION_ROLE_NAME", "EXTERNAL_ID")

	var tpl struct {
		ROSTemplateFormatVersion string                    `yaml:"ROSTemplateFormatVersion"`
		Description              string                    `yaml:"Description"`
		Parameters               map[string]map[string]any `yaml:"Parameters"`
		Resources                map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				RoleName                 map[string]string `yaml:"RoleName"`
				Description              string            `yaml:"Description"`
				MaxSessionDuration       int               `yaml:"MaxSessionDuration"`
				AssumeRolePolicyDocument trustPolicy       `yaml:"AssumeRolePolicyDocument"`
				Policies                 []struct {
					PolicyName     map[string]string `yaml:"PolicyName"`
					PolicyDocument memberPolicy      `yaml:"PolicyDocument"`
				} `yaml:"Policies"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
		Outputs map[string]any `yaml:"Outputs"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(readScript(t, "member-role/ros-template.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&tpl); err != nil {
		t.Fatalf("ros-template.yaml: %v", err)
	}
	if tpl.ROSTemplateFormatVersion != "2015-09-01" || len(tpl.Resources) != 1 {
		t.Fatalf("ros-template.yaml: version %q, %d resources", tpl.ROSTemplateFormatVersion, len(tpl.Resources))
	}
	role := tpl.Resources["Role"]
	if role.Type != "ALIYUN::RAM::Role" || role.Properties.RoleName["Ref"] != "RoleName" {
		t.Errorf("ros-template.yaml: resource %s named %v", role.Type, role.Properties.RoleName)
	}
	checkTrust(t, "ros-template.yaml", role.Properties.AssumeRolePolicyDocument,
		map[string]any{"Fn::Sub": "acs:ram::${ScanningAccountId}:role/${FunctionRoleName}"}, map[string]any{"Ref": "ExternalId"})
	if len(role.Properties.Policies) != 1 {
		t.Fatalf("ros-template.yaml: %d policies, want 1", len(role.Properties.Policies))
	}
	checkMemberPolicy(t, "ros-template.yaml", role.Properties.Policies[0].PolicyDocument)
	for _, name := range []string{"RoleName", "ScanningAccountId", "FunctionRoleName", "ExternalId"} {
		if _, ok := tpl.Parameters[name]; !ok {
			t.Errorf("ros-template.yaml: no parameter %s", name)
		}
	}
	if tpl.Parameters["RoleName"]["Default"] != DefaultMemberRoleName || tpl.Parameters["ExternalId"]["NoEcho"] != true {
		t.Errorf("ros-template.yaml: RoleName default %v, ExternalId NoEcho %v", tpl.Parameters["RoleName"]["Default"], tpl.Parameters["ExternalId"]["NoEcho"])
	}
}

// runScript runs a script of scripts/ with bash and only the environment
// given (plus PATH), and returns its output and exit code.
func runScript(t *testing.T, name string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to run the scripts")
	}
	cmd := exec.Command(bash, append([]string{filepath.Join("..", "..", "scripts", name)}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// TestRolloutScriptsDryRun: --dry-run prints the calls the scripts would
// make, with the parameters they need, and refuses bad settings by name.
func TestRolloutScriptsDryRun(t *testing.T) {
	roleEnv := []string{"VPNAUTHZ_ROLE_ARN=acs:ram::1234567890123456:role/vpnauthz", "MEMBER_ROLE_EXTERNAL_ID=ext-id-0123456789", "RD_FOLDER_IDS=fd-abc123"}
	trailEnv := []string{"ACCOUNT_ID=1234567890123456", "TRAIL_PROJECT=org-audit", "VPNAUTHZ_REGION=cn-shanghai"}
	cases := []struct {
		name, script string
		env, args    []string
		want         []string // lines, each must appear as a whole line
		absent       []string // substrings that must not appear
	}{
		{"member role create", "member-role.sh", roleEnv, []string{"--dry-run"}, []string{
			`aliyun ros CreateStackGroup --RegionId cn-hangzhou --StackGroupName vpnauthz-member-role --PermissionModel SERVICE_MANAGED --AutoDeployment \{\"Enabled\":true\,\"RetainStacksOnAccountRemoval\":false\} --TemplateBody "$(cat scripts/member-role/ros-template.yaml)" --Parameters.1.ParameterKey RoleName --Parameters.1.ParameterValue vpnauthz-auditor --Parameters.2.ParameterKey ScanningAccountId --Parameters.2.ParameterValue 1234567890123456 --Parameters.3.ParameterKey FunctionRoleName --Parameters.3.ParameterValue vpnauthz --Parameters.4.ParameterKey ExternalId --Parameters.4.ParameterValue \<MEMBER_ROLE_EXTERNAL_ID\>`,
			`aliyun ros CreateStackInstances --RegionId cn-hangzhou --StackGroupName vpnauthz-member-role --RegionIds \[\"cn-hangzhou\"\] --DeploymentTargets \{\"RdFolderIds\":\[\"fd-abc123\"\]\}`,
		}, []string{"ext-id-0123456789"}},
		{"member role update", "member-role.sh", append(roleEnv, "MEMBER_ROLE_NAME=audit-ro", "ROS_REGION=cn-shanghai"), []string{"--dry-run", "--update"}, []string{
			`aliyun ros UpdateStackGroup --RegionId cn-shanghai --StackGroupName vpnauthz-member-role --PermissionModel SERVICE_MANAGED --TemplateBody "$(cat scripts/member-role/ros-template.yaml)" --Parameters.1.ParameterKey RoleName --Parameters.1.ParameterValue audit-ro --Parameters.2.ParameterKey ScanningAccountId --Parameters.2.ParameterValue 1234567890123456 --Parameters.3.ParameterKey FunctionRoleName --Parameters.3.ParameterValue vpnauthz --Parameters.4.ParameterKey ExternalId --Parameters.4.ParameterValue \<MEMBER_ROLE_EXTERNAL_ID\> --RegionIds \[\"cn-shanghai\"\] --DeploymentTargets \{\"RdFolderIds\":\[\"fd-abc123\"\]\}`,
		}, []string{"CreateStackGroup", "ext-id-0123456789"}},
		{"one-account trail", "create-trail.sh", trailEnv, []string{"--dry-run"}, []string{
			`aliyun actiontrail CreateTrail --region cn-shanghai --Name vpnauthz-trail --SlsProjectArn acs:log:cn-shanghai:1234567890123456:project/org-audit --TrailRegion All --EventRW Write`,
			`aliyun actiontrail StartLogging --region cn-shanghai --Name vpnauthz-trail`,
		}, []string{"IsOrganizationTrail"}},
		{"organisation trail", "create-trail.sh", append(trailEnv, "ACCOUNTS=resource-directory", "TRAIL_NAME=org_trail"), []string{"--dry-run"}, []string{
			`aliyun actiontrail CreateTrail --region cn-shanghai --Name org_trail --SlsProjectArn acs:log:cn-shanghai:1234567890123456:project/org-audit --TrailRegion All --EventRW Write --IsOrganizationTrail true`,
			`aliyun actiontrail StartLogging --region cn-shanghai --Name org_trail`,
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runScript(t, tc.script, tc.env, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if !slices.Equal(lines, tc.want) {
				t.Errorf("printed:\n%s\nwant:\n%s", out, strings.Join(tc.want, "\n"))
			}
			for _, a := range tc.absent {
				if strings.Contains(out+errOut, a) {
					t.Errorf("output holds %q", a)
				}
			}
		})
	}

	bad := []struct {
		name, script string
		env          []string
		wantErr      string
	}{
		{"no function role", "member-role.sh", roleEnv[1:], "VPNAUTHZ_ROLE_ARN"},
		{"short external id", "member-role.sh", []string{roleEnv[0], "MEMBER_ROLE_EXTERNAL_ID=short", roleEnv[2]}, "MEMBER_ROLE_EXTERNAL_ID"},
		{"no folder", "member-role.sh", roleEnv[:2], "RD_FOLDER_IDS"},
		{"folder with a quote", "member-role.sh", append(roleEnv[:2:2], `RD_FOLDER_IDS=fd-a"]`), "RD_FOLDER_IDS"},
		{"no account", "create-trail.sh", trailEnv[1:], "ACCOUNT_ID"},
		{"project wildcard", "create-trail.sh", []string{trailEnv[0], "TRAIL_PROJECT=*"}, "TRAIL_PROJECT"},
		{"trail name too short", "create-trail.sh", append(trailEnv, "TRAIL_NAME=abc"), "TRAIL_NAME"},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			out, errOut, code := runScript(t, tc.script, tc.env, "--dry-run")
			if code == 0 || out != "" || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q: want a failure naming %s and no call", code, out, errOut, tc.wantErr)
			}
		})
	}
}
