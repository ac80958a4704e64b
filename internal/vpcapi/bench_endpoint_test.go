package vpcapi_test

func benchEndpoint(u string) string { return u }
