package api

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/merchant"
)

// AuditEventLog is the operator audit log (key rotations and revocations,
// merchant and certificate changes) as auditors read it.
type AuditEventLog interface {
	// Events returns the events matching f, oldest first, or an error
	// wrapping merchant.ErrUnavailable.
	Events(ctx context.Context, f merchant.EventFilter) ([]merchant.Event, error)
}

const (
	cursorEvents       = "events"
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
)

// globalEventSubjects are the key rings whose events every auditor sees,
// scoped or not: the platform keys sign every merchant's responses and the
// checkpoints, and are published to every auditor (/v1/audit/platform-keys).
var globalEventSubjects = []string{keys.PlatformOwner, keys.PlatformEd25519Owner}

// eventAction is an action ("key.rotated") or a family of them ("key").
var eventAction = regexp.MustCompile(`^[a-z]+(\.[a-z_]+)?$`)

// eventsPosition is what an events cursor seals: the filters of the first
// page and the last event shown. The scope is not in it: it is the token's,
// applied again on every page.
type eventsPosition struct {
	After   int64    `json:"after"`
	Subject string   `json:"subject,omitempty"`
	Actions []string `json:"actions,omitempty"`
	From    int64    `json:"from,omitempty"` // Unix microseconds, 0: open
	To      int64    `json:"to,omitempty"`
}

// AuditEventJSON is one operator event as GET /v1/audit/events lists it.
type AuditEventJSON struct {
	Seq      int64  `json:"seq"`
	At       string `json:"at"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Subject  string `json:"subject"`
	OldKeyID string `json:"old_key_id,omitempty"`
	NewKeyID string `json:"new_key_id,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// AuditEventsJSON is a page of GET /v1/audit/events.
type AuditEventsJSON struct {
	Events []AuditEventJSON `json:"events"`
	Next   string           `json:"next_cursor,omitempty"`
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// eventsQuery reads the first page's filters: subject, action (a
// comma-separated list of actions or families), from and to.
func eventsQuery(r *http.Request) (eventsPosition, error) {
	var pos eventsPosition
	var err error
	if pos.Subject, err = queryOne(r, "subject"); err != nil {
		return pos, err
	}
	if len(pos.Subject) > 128 {
		return pos, &paramError{"subject", "longer than 128 bytes"}
	}
	actions, err := queryOne(r, "action")
	if err != nil {
		return pos, err
	}
	if actions != "" {
		for _, a := range strings.Split(actions, ",") {
			if !eventAction.MatchString(a) || len(a) > 64 {
				return pos, &paramError{"action", "a comma-separated list of actions (key.rotated) or families (key)"}
			}
			pos.Actions = append(pos.Actions, a)
		}
	}
	from, err := queryTime(r, "from")
	if err != nil {
		return pos, err
	}
	to, err := queryTime(r, "to")
	if err != nil {
		return pos, err
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return pos, &paramError{"to", "not after from"}
	}
	pos.From, pos.To = micros(from), micros(to)
	return pos, nil
}

// handleEvents lists the operator audit log, oldest first, keyset-paginated
// by seq. A scoped auditor sees the events about its merchants and about the
// platform keys; a subject outside the scope lists as empty, exactly like a
// subject without events.
func handleEvents(log AuditEventLog, cursors cursorSealer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryInt(r, "limit", 1, maxEventsLimit)
		var cursor string
		if err == nil {
			cursor, err = queryOne(r, "cursor")
		}
		var pos eventsPosition
		if err == nil && cursor == "" {
			pos, err = eventsQuery(r)
		} else if err == nil {
			// A later page keeps the first page's filters, sealed.
			for _, name := range []string{"subject", "action", "from", "to"} {
				if r.URL.Query().Has(name) {
					err = &paramError{name, "the cursor carries the first page's filters; give only cursor and limit"}
					break
				}
			}
			if err == nil {
				err = cursors.open(cursorEvents, cursor, &pos)
			}
		}
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		if limit == 0 {
			limit = defaultEventsLimit
		}
		f := merchant.EventFilter{
			Subject: pos.Subject, After: pos.After, Limit: int(limit) + 1,
			Since: fromMicros(pos.From), Until: fromMicros(pos.To),
		}
		for _, a := range pos.Actions {
			f.Actions = append(f.Actions, merchant.Action(a))
		}
		if scope := scopeOf(r); scope != nil {
			f.Subjects = append(scope, globalEventSubjects...)
		}
		evs, err := log.Events(r.Context(), f)
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		out := AuditEventsJSON{Events: []AuditEventJSON{}}
		if len(evs) > int(limit) {
			evs = evs[:limit]
			next := pos
			next.After = evs[len(evs)-1].Seq
			out.Next = cursors.seal(cursorEvents, next)
		}
		for _, e := range evs {
			out.Events = append(out.Events, AuditEventJSON{e.Seq, utcTime(e.At), e.Actor, string(e.Action), e.Subject,
				e.OldKeyID, e.NewKeyID, e.Detail})
		}
		writeAuditJSON(w, out)
	}
}
