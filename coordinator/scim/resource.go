package scim

import (
	"time"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
)

// resource is a stored resource as the library answers it.
func resource(id, externalID string, a attrs, created, modified time.Time) scimlib.Resource {
	r := scimlib.Resource{ID: id, Attributes: a, Meta: scimlib.Meta{Created: &created, LastModified: &modified}}
	if externalID != "" {
		r.ExternalID = optional.NewString(externalID)
	}
	return r
}

// page is the resources that pass the request's filter, from its
// startIndex (1-based) and at most its count.
func page(rs []scimlib.Resource, params scimlib.ListRequestParams) scimlib.Page {
	var hits []scimlib.Resource
	for _, r := range rs {
		if params.FilterValidator == nil || params.FilterValidator.PassesFilter(filterable(r)) == nil {
			hits = append(hits, r)
		}
	}
	p := scimlib.Page{TotalResults: len(hits)}
	start := max(params.StartIndex, 1) - 1
	if start < len(hits) {
		hits = hits[start:]
		p.Resources = hits[:min(len(hits), max(params.Count, 0))]
	}
	return p
}

// filterable is r's attributes with its id and externalId, which filters
// may name.
func filterable(r scimlib.Resource) attrs {
	a := make(attrs, len(r.Attributes)+2)
	for k, v := range r.Attributes {
		a[k] = v
	}
	a["id"] = r.ID
	if r.ExternalID.Present() {
		a["externalId"] = r.ExternalID.Value()
	}
	return a
}
