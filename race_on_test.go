//go:build race

package main

// raceDetector says whether the tests run with -race, whose shadow memory
// makes the process's RSS no measure of the relay's.
const raceDetector = true
