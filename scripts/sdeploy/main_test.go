package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type template struct {
	Resources map[string]struct {
		Props struct {
			EnvironmentVariables map[string]string `yaml:"environmentVariables"`
			AsyncInvokeConfig    map[string]any    `yaml:"asyncInvokeConfig"`
			Triggers             []struct {
				TriggerName    string         `yaml:"triggerName"`
				TriggerType    string         `yaml:"triggerType"`
				SourceArn      string         `yaml:"sourceArn"`
				InvocationRole string         `yaml:"invocationRole"`
				TriggerConfig  map[string]any `yaml:"triggerConfig"`
			} `yaml:"triggers"`
		} `yaml:"props"`
	} `yaml:"resources"`
}

func readTemplate(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestRender: the template deployed keeps the failure destination and the
// trail trigger only when they are configured, keeps the EventBridge trigger
// last (the fc3 component skips what follows an unchanged one), and leaves
// everything else as s.yaml has it.
func TestRender(t *testing.T) {
	src := readTemplate(t)
	for _, tc := range []struct {
		destination, trail bool
		triggers           []string
	}{
		{false, false, []string{"daily-scan", "http-api", "vpn-grant-changes"}},
		{true, false, []string{"daily-scan", "http-api", "vpn-grant-changes"}},
		{false, true, []string{"daily-scan", "http-api", "trail-events", "vpn-grant-changes"}},
		{true, true, []string{"daily-scan", "http-api", "trail-events", "vpn-grant-changes"}},
	} {
		out, err := render(src, tc.destination, tc.trail)
		if err != nil {
			t.Fatal(err)
		}
		var tpl template
		if err := yaml.Unmarshal(out, &tpl); err != nil {
			t.Fatalf("destination %v, trail %v: output is not YAML: %v", tc.destination, tc.trail, err)
		}
		props := tpl.Resources["vpnauthz"].Props
		var names []string
		for _, tr := range props.Triggers {
			names = append(names, tr.TriggerName)
		}
		if !slices.Equal(names, tc.triggers) {
			t.Errorf("destination %v, trail %v: triggers %v, want %v", tc.destination, tc.trail, names, tc.triggers)
		}
		if last := props.Triggers[len(props.Triggers)-1]; last.TriggerType != "eventbridge" {
			t.Errorf("the last trigger is %s, want the EventBridge one", last.TriggerName)
		}
		_, hasDest := props.AsyncInvokeConfig["destinationConfig"]
		if hasDest != tc.destination {
			t.Errorf("destination configured %v, destinationConfig present %v", tc.destination, hasDest)
		}
		if props.AsyncInvokeConfig["maxAsyncRetryAttempts"] != 2 {
			t.Errorf("asyncInvokeConfig lost its retries: %v", props.AsyncInvokeConfig)
		}
		if len(props.EnvironmentVariables) < 20 {
			t.Errorf("environment variables lost: %v", props.EnvironmentVariables)
		}
	}
	// Rendering with everything configured changes nothing but the layout.
	out, err := render(src, true, true)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := yaml.Unmarshal(src, &a); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	if ya, _ := yaml.Marshal(a); string(ya) != string(must(yaml.Marshal(b))) {
		t.Error("with everything configured the template deployed differs from s.yaml")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestTemplateTriggers pins what s.yaml says about the triggers: the trail
// trigger reads TRAIL_PROJECT/TRAIL_LOGSTORE in the function's region with
// Log Service's ETL role, and the EventBridge trigger sets nothing whose
// meaning is disputed or void (asyncInvocationType, event-streaming's
// runOptions).
func TestTemplateTriggers(t *testing.T) {
	var tpl template
	if err := yaml.Unmarshal(readTemplate(t), &tpl); err != nil {
		t.Fatal(err)
	}
	for _, tr := range tpl.Resources["vpnauthz"].Props.Triggers {
		switch tr.TriggerType {
		case "log":
			if tr.SourceArn != "acs:log:${vars.region}:${config('AccountID')}:project/${env('TRAIL_PROJECT')}" ||
				tr.InvocationRole != "acs:ram::${config('AccountID')}:role/aliyunlogetlrole" {
				t.Errorf("trail trigger source %q, role %q", tr.SourceArn, tr.InvocationRole)
			}
			if src, _ := tr.TriggerConfig["sourceConfig"].(map[string]any); src["logstore"] != "${env('TRAIL_LOGSTORE')}" {
				t.Errorf("trail trigger reads %v", tr.TriggerConfig["sourceConfig"])
			}
		case "eventbridge":
			if _, ok := tr.TriggerConfig["asyncInvocationType"]; ok {
				t.Error("asyncInvocationType is set: its meaning is documented both ways")
			}
			if ro, _ := tr.TriggerConfig["runOptions"].(map[string]any); len(ro) != 1 || ro["mode"] != "event-driven" {
				t.Errorf("runOptions %v: want only mode: event-driven", ro)
			}
		}
	}
}

// TestDeployScriptSetsEveryVariable: every ${env('NAME')} of s.yaml is named
// in deploy.sh, which checks or defaults it, so that no setting reaches FC
// as the literal text of an unset variable.
func TestDeployScriptSetsEveryVariable(t *testing.T) {
	deploy, err := os.ReadFile(filepath.Join("..", "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\$\{env\('([A-Z0-9_]+)'\)\}`).FindAllStringSubmatch(string(readTemplate(t)), -1)
	if len(names) < 20 {
		t.Fatalf("found only %d variables in s.yaml", len(names))
	}
	for _, m := range names {
		if !regexp.MustCompile(`\b` + m[1] + `\b`).Match(deploy) {
			t.Errorf("s.yaml reads %s, which deploy.sh neither checks nor defaults", m[1])
		}
	}
	if strings.Contains(string(deploy), "VPNAUTHZ_FAILURE_DESTINATION SCAN_TARGETS") {
		t.Error("deploy.sh still requires a failure destination")
	}
}

// TestRenderRefusesAnUnexpectedTemplate: a template the tool does not
// recognise is an error, not a silent deployment of everything.
func TestRenderRefusesAnUnexpectedTemplate(t *testing.T) {
	for name, src := range map[string]string{
		"no resources":       "edition: 3.0.0\n",
		"two resources":      "resources:\n  a: {props: {}}\n  b: {props: {}}\n",
		"no destination":     "resources:\n  a:\n    props:\n      asyncInvokeConfig: {}\n      triggers: []\n",
		"no trail trigger":   "resources:\n  a:\n    props:\n      asyncInvokeConfig: {destinationConfig: {}}\n      triggers: [{triggerType: timer}]\n",
		"not a YAML mapping": "- a\n",
	} {
		if _, err := render([]byte(src), false, false); err == nil {
			t.Errorf("%s: rendered without an error", name)
		}
	}
}
