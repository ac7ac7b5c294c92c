// Package doccheck holds tests that hold the documentation to the code:
// every test docs/compliance.md names as the proof of a control exists,
// and every row of its tables names one.
package doccheck
