// Package yamlnode reads yaml.v3 node trees, where a loader needs the lines of what
// it decoded (to name them in its errors).
package yamlnode

import "gopkg.in/yaml.v3"

// Value is the value of key in a YAML mapping node, nil when absent.
func Value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
