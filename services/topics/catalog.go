package topics

import (
	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/topic"
)

func list(c *topic.Catalog, req events.TopicsListRequest) events.TopicsListReply {
	out := events.TopicsListReply{Header: events.NewHeader(events.TypeTopicsListReply), Topics: []events.Topic{}}
	for _, t := range c.List() {
		if req.Platform != "" && !t.SupportsPlatform(req.Platform) {
			continue
		}
		out.Topics = append(out.Topics, wire(t, req.Locale))
	}
	return out
}

func get(c *topic.Catalog, req events.TopicsGetRequest) (events.TopicsGetReply, error) {
	t, ok := c.Get(req.Topic)
	if !ok {
		return events.TopicsGetReply{}, problem.New(problem.NotFound, "no topic %q", req.Topic)
	}
	return events.TopicsGetReply{Header: events.NewHeader(events.TypeTopicsGetReply), Topic: wire(t, req.Locale)}, nil
}

// wire is what a chatbot sees of a topic, its texts in loc: never the NQL or the
// rules.
func wire(t *topic.Topic, loc string) events.Topic {
	w := events.Topic{
		ID: t.ID, LegacyID: t.LegacyID, Title: t.TitleIn(loc), Description: t.DescriptionIn(loc),
		Platforms: t.Platforms, Phrases: t.PhrasesIn(loc),
		Queries: make([]string, 0, len(t.Queries)), Remediations: make([]events.Remediation, 0, len(t.Remediations)),
	}
	for _, q := range t.Queries {
		w.Queries = append(w.Queries, q.ID)
	}
	for _, r := range t.Remediations {
		title, message := t.RemediationIn(loc, r.ID, r.Title, r.Message)
		w.Remediations = append(w.Remediations, events.Remediation{ID: r.ID, Title: title, RemoteAction: r.RemoteAction, Message: message})
	}
	return w
}
