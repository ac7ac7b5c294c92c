package ui

// AuditBackend is what the audit and admin-trail pages need.
type AuditBackend interface{}

// auditRoutes adds the audit and admin-trail pages.
func (h *handler) auditRoutes() {}
