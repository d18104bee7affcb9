package events

// Catalog lists every message type with an example value; the schema test validates
// each example against schemas/events/<type>.json, so the Go structs and the schemas
// cannot drift apart.
func Catalog() []Message {
	topic := Topic{
		ID: "outlook", Title: "Microsoft Outlook issues", Description: "d", Platforms: []string{"Windows"},
		Queries:      []string{"#diagnose_outlook_issues"},
		Remediations: []Remediation{{ID: "restart", Title: "Restart", Message: "Please restart"}},
	}
	return []Message{
		TopicsListRequest{Header: NewHeader(TypeTopicsListRequest), Platform: "Windows"},
		TopicsListReply{Header: NewHeader(TypeTopicsListReply), Topics: []Topic{topic}},
		TopicsGetRequest{Header: NewHeader(TypeTopicsGetRequest), Topic: "outlook"},
		TopicsGetReply{Header: NewHeader(TypeTopicsGetReply), Topic: topic},
	}
}
