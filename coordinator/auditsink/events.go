package auditsink

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/moatmesh/moat/coordinator/store"
)

// refusedAction is the admin trail's action for a refused credential
// (coordinator/trail.go).
const refusedAction = "auth.refused"

// read returns the events of stream past cursor that the filter keeps,
// and the position of the last one read.
func (r *Runner) read(ctx context.Context, stream string, cursor int64) ([]Event, int64, error) {
	if stream == StreamRecords {
		recs, err := r.src.AuditAfter(ctx, cursor, r.cfg.Batch)
		if err != nil || len(recs) == 0 {
			return nil, cursor, err
		}
		var evs []Event
		for _, a := range recs {
			if r.cfg.Filter.Records || a.Decision != "allow" {
				evs = append(evs, recordEvent(a, r.cfg.Prompts))
			}
		}
		return evs, recs[len(recs)-1].Seq, nil
	}
	as, err := r.src.AdminActionsAfter(ctx, cursor, r.cfg.Batch)
	if err != nil || len(as) == 0 {
		return nil, cursor, err
	}
	var evs []Event
	for _, a := range as {
		if r.cfg.Filter.Admin || a.Action == refusedAction {
			evs = append(evs, adminEvent(a))
		}
	}
	return evs, as[len(as)-1].ID, nil
}

func recordEvent(a *store.AuditRecord, prompts bool) Event {
	data := json.RawMessage(a.Body)
	if !prompts {
		data = withoutPrompt(a.Body)
	}
	return Event{ID: "record:" + a.ID, Stream: StreamRecords, Seq: a.Seq, Time: a.Time, Data: data}
}

// withoutPrompt returns a record without its "prompt" and "promptSealed"
// fields. A body that is not a JSON object (nodes send objects) is
// replaced by an empty one rather than sent unread.
func withoutPrompt(body []byte) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return json.RawMessage("{}")
	}
	_, clear := m["prompt"]
	_, sealed := m["promptSealed"]
	if !clear && !sealed {
		return body
	}
	delete(m, "prompt")
	delete(m, "promptSealed") // ciphertext, but still the person's prompt
	b, _ := json.Marshal(m)
	return b
}

func adminEvent(a *store.AdminAction) Event {
	data, _ := json.Marshal(adminEntry{Action: a.Action, Actor: a.Actor, Target: a.Target, Detail: a.Detail})
	return Event{ID: "admin:" + strconv.FormatInt(a.ID, 10), Stream: StreamAdmin, Seq: a.ID, Time: a.Time, Data: data}
}
