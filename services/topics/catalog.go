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
		out.Topics = append(out.Topics, wire(t))
	}
	return out
}

func get(c *topic.Catalog, req events.TopicsGetRequest) (events.TopicsGetReply, error) {
	t, ok := c.Get(req.Topic)
	if !ok {
		return events.TopicsGetReply{}, problem.New(problem.NotFound, "no topic %q", req.Topic)
	}
	return events.TopicsGetReply{Header: events.NewHeader(events.TypeTopicsGetReply), Topic: wire(t)}, nil
}

// wire is what a chatbot sees of a topic: never the NQL or the rules.
func wire(t *topic.Topic) events.Topic {
	w := events.Topic{
		ID: t.ID, LegacyID: t.LegacyID, Title: t.Title, Description: t.Description,
		Platforms: t.Platforms, Phrases: append([]string{}, t.Phrases...),
		Queries: make([]string, 0, len(t.Queries)), Remediations: make([]events.Remediation, 0, len(t.Remediations)),
	}
	for _, q := range t.Queries {
		w.Queries = append(w.Queries, q.ID)
	}
	for _, r := range t.Remediations {
		w.Remediations = append(w.Remediations, events.Remediation{ID: r.ID, Title: r.Title, RemoteAction: r.RemoteAction, Message: r.Message})
	}
	return w
}
