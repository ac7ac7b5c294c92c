package ui

// PolicyBackend is what the policy editor needs.
type PolicyBackend interface{}

// policyRoutes adds the policy editor and its history.
func (h *handler) policyRoutes() {}
