package ui

// PeopleBackend is what the people and models pages need, and the
// device and node details beyond Backend's.
type PeopleBackend interface{}

// peopleRoutes adds the people and models pages.
func (h *handler) peopleRoutes() {}
