// Command sdeploy writes the Serverless Devs template deploy.sh deploys:
// s.yaml without the optional parts that are not configured, so that a
// first deployment needs neither a failure destination nor a trail.
//
//	go run ./scripts/sdeploy [-in s.yaml] [-out s.deploy.yaml]
//
// The failure destination stays when VPNAUTHZ_FAILURE_DESTINATION is set,
// the Log Service trigger on the trail (triggerType log) when TRAIL_PROJECT
// is set. Everything else, comments included, is s.yaml as written.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

func main() {
	in := flag.String("in", "s.yaml", "the project's template")
	out := flag.String("out", "s.deploy.yaml", "where to write the template to deploy")
	flag.Parse()
	src, err := os.ReadFile(*in)
	if err != nil {
		fail(err)
	}
	res, err := render(src, os.Getenv("VPNAUTHZ_FAILURE_DESTINATION") != "", os.Getenv("TRAIL_PROJECT") != "")
	if err != nil {
		fail(fmt.Errorf("%s: %w", *in, err))
	}
	if err := os.WriteFile(*out, res, 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "sdeploy: %v\n", err)
	os.Exit(1)
}

// render drops the failure destination and the trail trigger unless wanted.
func render(src []byte, destination, trail bool) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not a YAML document")
	}
	resources := lookup(doc.Content[0], "resources")
	if resources == nil || resources.Kind != yaml.MappingNode || len(resources.Content) != 2 {
		return nil, errors.New("want exactly one resource under resources")
	}
	props := lookup(resources.Content[1], "props")
	if props == nil {
		return nil, errors.New("the resource has no props")
	}
	if !destination {
		async := lookup(props, "asyncInvokeConfig")
		if async == nil || !remove(async, "destinationConfig") {
			return nil, errors.New("props.asyncInvokeConfig.destinationConfig not found")
		}
	}
	if !trail {
		triggers := lookup(props, "triggers")
		if triggers == nil || triggers.Kind != yaml.SequenceNode {
			return nil, errors.New("props.triggers is not a list")
		}
		kept := triggers.Content[:0]
		dropped := 0
		for _, t := range triggers.Content {
			if v := lookup(t, "triggerType"); v != nil && v.Value == "log" {
				dropped++
				continue
			}
			kept = append(kept, t)
		}
		if dropped != 1 {
			return nil, fmt.Errorf("want one trigger of triggerType log, found %d", dropped)
		}
		triggers.Content = kept
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// remove deletes key from mapping m; it reports whether the key was there.
func remove(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return true
		}
	}
	return false
}
