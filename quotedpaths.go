package main

import (
	"errors"
	"fmt"
	"strings"
)

// File names in the route text form. Windows keeps programs and their
// certificates under "C:\Program Files", so a file name in a route option
// (tls=, tlsclientca=, backendca=, backendcert=) may be written in double
// quotes, which keep its spaces and commas:
//
//	443 127.0.0.1 8080 tls="C:\Program Files\relaytcp\site.pem","C:\Program Files\relaytcp\site.key"
//
// A quote cannot be part of a file name. The route's text form writes a
// name in quotes when it needs them (quoteFileName), so a configuration
// saved and read back names the same files.

// splitRouteFields splits a route's text into its fields at spaces and
// tabs outside double quotes; the quotes stay in the fields.
func splitRouteFields(s string) ([]string, error) {
	var fields []string
	var field strings.Builder
	quoted, inField := false, false
	for _, ch := range s {
		switch {
		case ch == '"':
			quoted = !quoted
			inField = true
			field.WriteRune(ch)
		case !quoted && (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'):
			if inField {
				fields = append(fields, field.String())
				field.Reset()
				inField = false
			}
		default:
			inField = true
			field.WriteRune(ch)
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", strings.TrimSpace(s))
	}
	if inField {
		fields = append(fields, field.String())
	}
	return fields, nil
}

// parseFileNames splits an option's value into file names at commas
// outside double quotes, and takes the quotes off each name.
func parseFileNames(value string) ([]string, error) {
	var names []string
	var name strings.Builder
	quoted := false
	flush := func() error {
		n := name.String()
		name.Reset()
		if n == "" {
			return errors.New("an empty file name")
		}
		names = append(names, n)
		return nil
	}
	for _, ch := range value {
		switch {
		case ch == '"':
			quoted = !quoted
		case ch == ',' && !quoted:
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			name.WriteRune(ch)
		}
	}
	if quoted {
		return nil, errors.New("an unterminated quote")
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return names, nil
}

// quoteFileName writes a file name as the route text form reads it back:
// in double quotes when it holds a space, a tab or a comma.
func quoteFileName(name string) string {
	if strings.ContainsAny(name, " \t,") {
		return `"` + name + `"`
	}
	return name
}
