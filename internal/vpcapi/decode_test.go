package vpcapi

import (
	"reflect"
	"strings"
	"testing"

	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"
)

// TestConnectionsBodyKeys holds connectionsBody to the SDK's model: every key
// it reads is one of the model's, at the same place.
func TestConnectionsBodyKeys(t *testing.T) {
	var check func(path string, ours, sdk reflect.Type)
	check = func(path string, ours, sdk reflect.Type) {
		for ours.Kind() == reflect.Pointer || ours.Kind() == reflect.Slice {
			ours = ours.Elem()
		}
		for sdk.Kind() == reflect.Pointer || sdk.Kind() == reflect.Slice {
			sdk = sdk.Elem()
		}
		if ours.Kind() != reflect.Struct {
			if ours != sdk {
				t.Errorf("%s: %s, the SDK's is %s", path, ours, sdk)
			}
			return
		}
		for i := range ours.NumField() {
			f := ours.Field(i)
			key := f.Tag.Get("json")
			var match *reflect.StructField
			for j := range sdk.NumField() {
				if sf := sdk.Field(j); strings.Split(sf.Tag.Get("json"), ",")[0] == key {
					match = &sf
					break
				}
			}
			if match == nil {
				t.Errorf("%s.%s: no such key in %s", path, key, sdk)
				continue
			}
			check(path+"."+key, f.Type, match.Type)
		}
	}
	check("body", reflect.TypeFor[connectionsBody](), reflect.TypeFor[vpc.DescribeVpnConnectionsResponseBody]())
}
