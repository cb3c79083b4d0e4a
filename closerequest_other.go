//go:build !windows

package main

// watchCloseRequest: only the Windows installer asks running relaytcp
// processes to close (closerequest_windows.go); a package manager replaces
// a running Linux binary without that.
func watchCloseRequest(onClose func()) (stop func()) { return func() {} }
