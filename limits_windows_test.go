package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestRegistryClientLimits: the registry's ClientMaxConn value and a
// route's limits read back as written, and a bad ClientMaxConn is refused
// naming the value.
func TestRegistryClientLimits(t *testing.T) {
	k := testKey(t)
	spec, err := ParseRouteSpec("8080 127.0.0.1 80 clientmaxconn=3 clientrate=20/1s rate=10M connrate=512K")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{ClientMaxConn: 4, Routes: []RouteSpec{spec}}
	if err := writeConfigValues(k, want); err != nil {
		t.Fatal(err)
	}
	got, err := readConfigValues(k)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientMaxConn != 4 || len(got.Routes) != 1 || got.Routes[0] != spec {
		t.Fatalf("read back %+v; want %+v", got, want)
	}
	k.SetStringValue(valueClientMax, "lots")
	if _, err := readConfigValues(k); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s: want a whole number", valueClientMax)) {
		t.Errorf("ClientMaxConn lots: %v", err)
	}
}
