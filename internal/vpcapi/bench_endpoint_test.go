package vpcapi_test

import "vpnauthz/internal/endpoint"

func benchEndpoint(u string) endpoint.Regional { return endpoint.MustParseRegional(u) }
