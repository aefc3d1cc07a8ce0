package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/entitlement"
	"github.com/licensor/licensor/internal/jsonapi"
)

// Wire forms of the entitlement check.
type (
	checkDocument struct {
		Data []checkAnswer `json:"data"`
	}
	checkAnswer struct {
		Type       string           `json:"type"`
		Attributes checkAnswerAttrs `json:"attributes"`
	}
	checkAnswerAttrs struct {
		UserID     string           `json:"user_id"`
		ChannelID  string           `json:"channel_id"`
		Service    licensor.Service `json:"service"`
		At         int64            `json:"at"`
		Entitled   bool             `json:"entitled"`
		ValidUntil *int64           `json:"valid_until"`
	}
)

// getEntitlementsByUser serves GetEntitlementsByUser (API key).
func (s *Server) getEntitlementsByUser(w http.ResponseWriter, r *http.Request) error {
	return s.entitlements(w, r, "")
}

// getUserEntitlements serves GetUserEntitlements (the user's token): the
// user's client may keep the answer, revalidating it before each use.
func (s *Server) getUserEntitlements(w http.ResponseWriter, r *http.Request) error {
	return s.entitlements(w, r, "private, no-cache")
}

// entitlements answers what the user of the path may use at ?at=T (default
// now), with an ETag; If-None-Match with it gives 304. cacheControl, when
// set, replaces the route's Cache-Control on success. The answer and its
// ETag come memoized from the cache; the body is written from it without
// encoding/json (byte for byte the same).
func (s *Server) entitlements(w http.ResponseWriter, r *http.Request, cacheControl string) error {
	user := r.PathValue("user_id")
	if !licensor.ValidUserID(user) {
		return licensor.Errorf(licensor.CodeInvalidID, "user_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
	}
	t := s.unix()
	if r.URL.RawQuery != "" {
		q := jsonapi.NewQuery(r.URL)
		if at := q.Int("at", 0); at != nil {
			t = *at
		}
		if err := q.Done(); err != nil {
			return err
		}
	}
	ans, err := s.endUser.cache.Answer(r.Context(), user, t)
	if err != nil {
		return err
	}
	h := w.Header()
	info := infoOf(r)
	etag := ans.ETag()
	// Header keys canonical already (no Set, no copy of the key), values
	// in the request's room or shared (never changed in place).
	h["Etag"] = info.headerValue(etag)
	if cacheControl != "" {
		h["Cache-Control"] = cacheControlValue(cacheControl)
	}
	if noneMatch(r.Header["If-None-Match"], etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	buf := bodyBuffers.Get().(*[]byte)
	body := entitlementJSON{}.AppendAnswer(slices.Grow((*buf)[:0], ans.Size()), user, ans)
	h["Content-Type"] = headerMediaType
	h["Content-Length"] = info.headerValue(strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // copied or sent before Write returns: the buffer is free again
	if cap(body) <= maxPooledBody {
		*buf = body
		bodyBuffers.Put(buf)
	}
	return nil
}

// entitlementJSON is the entitlement cache's Encoder: the representation
// of an answer, byte for byte what encoding/json makes of
// entitlementsDocument (so ETags do not depend on how it was made;
// TestEntitlementBodyMatchesJSON).
type entitlementJSON struct{}

// AppendChannel implements entitlement.Encoder.
func (entitlementJSON) AppendChannel(b []byte, id string) []byte {
	b = append(b, `{"type":"Channel","id":`...)
	b = jsonapi.AppendString(b, id)
	return append(b, '}')
}

// serviceMembers are the members of the relationships, in the order of
// licensor.Services().
var serviceMembers = [4]struct {
	service licensor.Service
	member  string
}{
	{licensor.ServiceLive, `,"live":{"data":[`}, {licensor.ServiceCatchup, `,"catchup":{"data":[`},
	{licensor.ServiceNPVR, `,"npvr":{"data":[`}, {licensor.ServiceStartover, `,"startover":{"data":[`},
}

// AppendAnswer implements entitlement.Encoder.
func (entitlementJSON) AppendAnswer(b []byte, user string, a *entitlement.Answer) []byte {
	b = append(b, `{"data":{"id":`...)
	b = jsonapi.AppendString(b, user)
	b = append(b, `,"type":"Entitlements","attributes":{"valid_until":`...)
	b = jsonapi.AppendIntPtr(b, a.ValidUntil())
	b = append(b, `},"relationships":{"user":{"data":{"type":"User","id":`...)
	b = jsonapi.AppendString(b, user)
	b = append(b, `}},"products":{"data":[`...)
	first := true
	for id := range a.ProductIDs() {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"type":"Product","id":"`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `"}`...)
	}
	b = append(b, "]}"...)
	for _, m := range serviceMembers {
		b = append(b, m.member...)
		b = a.AppendChannels(b, m.service, ',')
		b = append(b, "]}"...)
	}
	return append(b, "}}}"...)
}

// bodyBuffers recycles the buffers entitlement answers are written from
// (a few KiB each, on the hottest route).
var bodyBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBody = 64 << 10

// Shared header values of entitlement answers (never changed in place).
var (
	headerMediaType      = []string{jsonapi.MediaType}
	headerPrivateNoCache = []string{"private, no-cache"}
)

// cacheControlValue is the header value of cacheControl, shared when it is
// the end-user API's.
func cacheControlValue(cacheControl string) []string {
	if cacheControl == headerPrivateNoCache[0] {
		return headerPrivateNoCache
	}
	return []string{cacheControl}
}

// noneMatch reports whether an If-None-Match header lists etag (weak
// comparison, RFC 9110 §13.1.2) or is "*".
func noneMatch(headers []string, etag string) bool {
	for _, h := range headers {
		for rest := h; ; {
			tag, more, found := strings.Cut(rest, ",")
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == etag {
				return true
			}
			if !found {
				break
			}
			rest = more
		}
	}
	return false
}

// checkQuestion is one question of a batch check.
type checkQuestion struct {
	user, channel string
	service       licensor.Service
	at            *int64
}

// checkEntitlements serves CheckEntitlements: up to MaxBatch questions
// "may user U use channel C on service S at T (default now)", answered in
// order. An unknown user simply is entitled to nothing.
func (s *Server) checkEntitlements(w http.ResponseWriter, r *http.Request) error {
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	if err := jsonapi.CheckMediaType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := jsonapi.ReadBody(r)
	if err != nil {
		return jsonapi.BodyReadError(err)
	}
	questions, err := parseCheckRequest(body, s.opts.MaxBatch)
	if err != nil {
		return err
	}
	if err := s.checkBatchSize(len(questions)); err != nil {
		return err
	}
	s.metrics.Batch("entitlements_check", len(questions))
	ctx := r.Context()
	ec := s.endUser.cache
	now := s.unix()
	if err := ec.Prefetch(ctx, len(questions), func(i int) string { return questions[i].user }, now); err != nil {
		return err
	}
	out := checkDocument{Data: make([]checkAnswer, len(questions))}
	for i, q := range questions {
		t := now
		if q.at != nil {
			t = *q.at
		}
		ans, err := ec.Answer(ctx, q.user, t)
		if err != nil {
			return err
		}
		out.Data[i] = checkAnswer{Type: "EntitlementCheck", Attributes: checkAnswerAttrs{
			UserID: q.user, ChannelID: q.channel, Service: q.service, At: t,
			Entitled: ans.Allows(q.service, q.channel), ValidUntil: ans.ValidUntil(),
		}}
	}
	return jsonapi.Write(w, http.StatusOK, out)
}

// checkRequest is the shape of a valid check request, for the fast path.
type checkRequest struct {
	Data []struct {
		Type       string `json:"type"`
		Attributes struct {
			UserID    string `json:"user_id"`
			ChannelID string `json:"channel_id"`
			Service   string `json:"service"`
			At        *int64 `json:"at"`
		} `json:"attributes"`
		Meta json.RawMessage `json:"meta"`
	} `json:"data"`
	Meta    json.RawMessage `json:"meta"`
	JSONAPI json.RawMessage `json:"jsonapi"`
}

// parseCheckRequest reads the questions of a check request. A well-formed
// request is decoded straight into its shape; anything else goes through
// the generic JSON:API reader, which reports every problem with its
// pointer. (The fast path matches member names case-insensitively, as
// encoding/json does: the one leniency of the API, kept for the speed of
// the hot path.) A request past the limits of jsonapi.CheckShape (maxBatch
// questions) is refused before either.
func parseCheckRequest(body []byte, maxBatch int) ([]checkQuestion, error) {
	limits := jsonapi.Limits{Batch: maxBatch}
	if err := jsonapi.CheckShape(body, limits); err != nil {
		return nil, err
	}
	var req checkRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err == nil && req.Data != nil && atEOF(dec) && jsonapi.SimpleText(body) {
		questions := make([]checkQuestion, len(req.Data))
		ok := true
		for i, d := range req.Data {
			a := &d.Attributes
			svc, known := licensor.ParseService(a.Service)
			if d.Type != "EntitlementCheck" || !known || !licensor.ValidUserID(a.UserID) || !licensor.ValidChannelID(a.ChannelID) ||
				(a.At != nil && *a.At < 0) {
				ok = false
				break
			}
			questions[i] = checkQuestion{user: a.UserID, channel: a.ChannelID, service: svc, at: a.At}
		}
		if ok {
			return questions, nil
		}
	}
	doc, err := jsonapi.ParseDocument(body, limits)
	if err != nil {
		return nil, err
	}
	items, _, err := jsonapi.Resources(doc, true)
	if err != nil {
		return nil, err
	}
	questions := make([]checkQuestion, len(items))
	var bad licensor.ItemErrors
	for i, m := range items {
		q, errs := parseCheckQuestion(m)
		bad = jsonapi.AddItemErrors(bad, i, errs)
		questions[i] = q
	}
	if len(bad) > 0 {
		return nil, jsonapi.At(jsonapi.BatchBase, bad)
	}
	return questions, nil
}

func atEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err == io.EOF
}

// parseCheckQuestion reads {"type": "EntitlementCheck", "attributes":
// {"user_id", "channel_id", "service"[, "at"]}}.
func parseCheckQuestion(m map[string]any) (checkQuestion, licensor.Errors) {
	var errs licensor.Errors
	var q checkQuestion
	res := jsonapi.NewObject(m, "", &errs)
	res.Type("EntitlementCheck")
	res.Ignore("meta")
	a, ok := res.Object("attributes")
	if !ok {
		if _, present := m["attributes"]; !present || m["attributes"] == nil {
			res.Fail(licensor.CodeMissingAttribute, "attributes", "attributes user_id, channel_id and service are required")
		}
		res.Done()
		return q, errs
	}
	required := func(name string) *string {
		v, ok := a.Str(name, 0)
		if !ok {
			if v, present := a.Member(name); !present || v == nil {
				a.Fail(licensor.CodeMissingAttribute, name, "%s is required", name)
			}
		}
		return v
	}
	if u := required("user_id"); u != nil {
		if !licensor.ValidUserID(*u) {
			a.Fail(licensor.CodeInvalidAttribute, "user_id", "a user id is 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		}
		q.user = *u
	}
	if c := required("channel_id"); c != nil {
		if !licensor.ValidChannelID(*c) {
			a.Fail(licensor.CodeInvalidAttribute, "channel_id", "a channel id is 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		}
		q.channel = *c
	}
	if sv := required("service"); sv != nil {
		if svc, ok := licensor.ParseService(*sv); ok {
			q.service = svc
		} else {
			a.Fail(licensor.CodeInvalidAttribute, "service", "service must be one of live, catchup, npvr, startover")
		}
	}
	q.at, _ = a.Int("at", 0)
	a.Done()
	res.Done()
	return q, errs
}
