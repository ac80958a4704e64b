package ramactions

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"
	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// pending lists the table's calls that other work has not written yet, by
// "feature/action", each with the client that will make it. The lead empties
// it when merging that work; TestTableCalledInCode fails both when a listed
// call is missing and when a pending one has arrived, so this list cannot go
// stale in either direction.
var pending = map[string]string{}

// skipDirs hold no production calls: emulators, benchmarks, tests, tools.
var skipDirs = []string{".git", "internal/emulator", "internal/bench", "internal/e2e", "internal/faults", "internal/testutil", "internal/ramactions", "scripts", "testdata", "target", "dist"}

// codeFile is what a production Go file calls: the names it selects
// (x.Name), the operations it names for a generic client (the string value
// of an Action: field, as in darabonba-openapi's Params), and the packages it
// imports.
type codeFile struct {
	path       string
	selectors  map[string]bool
	operations map[string]bool
	imports    map[string]bool
}

func scanCode(t *testing.T) []codeFile {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var files []codeFile
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if slices.Contains(skipDirs, rel) || slices.Contains(skipDirs, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		cf := codeFile{path: rel, selectors: map[string]bool{}, operations: map[string]bool{}, imports: map[string]bool{}}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			cf.imports[p] = true
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				cf.selectors[n.Sel.Name] = true
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Action" {
					// Action: "X" or Action: tea.String("X").
					ast.Inspect(n.Value, func(v ast.Node) bool {
						if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if s, err := strconv.Unquote(lit.Value); err == nil {
								cf.operations[s] = true
							}
						}
						return true
					})
				}
			}
			return true
		})
		files = append(files, cf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d production Go files under %s", len(files), root)
	}
	return files
}

// apiForms are the method names an SDK gives one operation.
func apiForms(api string) []string {
	return []string{api, api + "WithOptions", api + "WithContext", api + "V2", api + "Request"}
}

// callers returns the files that call api: select one of its method forms,
// or name it as the Action of a generic client's request.
func callers(files []codeFile, api string) []string {
	var out []string
	for _, f := range files {
		if f.operations[api] || slices.ContainsFunc(apiForms(api), func(m string) bool { return f.selectors[m] }) {
			out = append(out, f.path)
		}
	}
	return out
}

// TestTableCalledInCode: every API the table names is called somewhere in
// the production code, so that the policy grants nothing unused; the calls
// not written yet are listed in pending, and nowhere else.
func TestTableCalledInCode(t *testing.T) {
	files := scanCode(t)
	seen := map[string]bool{}
	for _, a := range Table {
		if len(a.APIs) == 0 {
			if a.Caller != Platform {
				t.Errorf("%s/%s: only calls FC makes for us may name no API", a.Feature, a.RAM)
			}
			continue
		}
		key := string(a.Feature) + "/" + a.RAM
		seen[key] = true
		var where []string
		for _, api := range a.APIs {
			where = append(where, callers(files, api)...)
		}
		why, isPending := pending[key]
		switch {
		case len(where) == 0 && !isPending:
			t.Errorf("%s: the table says %v is called, but no production code calls it: drop it from the table", key, a.APIs)
		case len(where) > 0 && isPending:
			t.Errorf("%s: %v is now called (%s): remove it from pending (%s)", key, a.APIs, strings.Join(where, ", "), why)
		case len(where) > 0:
			t.Logf("%s: %v called in %s", key, a.APIs, strings.Join(where, ", "))
		}
	}
	for key := range pending {
		if !seen[key] {
			t.Errorf("pending names %s, which is not in the table", key)
		}
	}
}

// sdkAPIs returns the operations an SDK client type offers, and the methods
// that configure the client without calling the service.
func sdkAPIs(typ reflect.Type, isAPI func(name string, methods map[string]bool) bool) map[string]bool {
	methods := map[string]bool{}
	for i := range typ.NumMethod() {
		methods[typ.Method(i).Name] = true
	}
	out := map[string]bool{}
	for m := range methods {
		if isAPI(m, methods) {
			out[m] = true
		}
	}
	return out
}

// TestCodeCallsOnlyTableAPIs is the other direction: every operation of the
// VPC and Log Service SDK clients that the production code selects, in a file
// that imports that SDK, is in the table (whoever the caller). A new call
// without its RAM action fails here before it fails on a real account.
func TestCodeCallsOnlyTableAPIs(t *testing.T) {
	inTable := map[string]bool{}
	for _, a := range Table {
		for _, api := range a.APIs {
			for _, m := range apiForms(api) {
				inTable[m] = true
			}
		}
	}
	// Darabonba clients name every operation twice: X and XWithOptions.
	vpcAPIs := sdkAPIs(reflect.TypeOf(&vpc.Client{}), func(m string, all map[string]bool) bool {
		return all[m+"WithOptions"] || (strings.HasSuffix(m, "WithOptions") && all[strings.TrimSuffix(m, "WithOptions")])
	})
	// The Log Service client's methods are operations, except these, which
	// set the client up.
	slsSetup := []string{"SetHTTPClient", "SetUserAgent", "SetRetryTimeout", "SetAuthVersion", "SetRegion", "SetSignV4",
		"WithCredentialsProvider", "ResetAccessKeyToken", "Close", "InitV4", "WithRequestTimeout"}
	slsAPIs := sdkAPIs(reflect.TypeOf(&sls.Client{}), func(m string, _ map[string]bool) bool { return !slices.Contains(slsSetup, m) })
	if len(vpcAPIs) < 100 || len(slsAPIs) < 50 || !vpcAPIs["DescribeVpnConnectionsWithOptions"] || !slsAPIs["PutLogs"] {
		t.Fatalf("the SDKs' operations were not found: %d VPC, %d Log Service", len(vpcAPIs), len(slsAPIs))
	}

	sdks := []struct {
		importPath string
		apis       map[string]bool
	}{
		{"github.com/alibabacloud-go/vpc-20160428/v6/client", vpcAPIs},
		{"github.com/aliyun/aliyun-log-go-sdk", slsAPIs},
	}
	checked := 0
	for _, f := range scanCode(t) {
		for _, sdk := range sdks {
			if !f.imports[sdk.importPath] {
				continue
			}
			for sel := range f.selectors {
				if !sdk.apis[sel] {
					continue
				}
				checked++
				if !inTable[sel] {
					t.Errorf("%s calls %s (%s), which the RAM action table does not list", f.path, sel, sdk.importPath)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no SDK call found in the production code: the scan is broken")
	}
}
