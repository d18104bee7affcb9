package upstream_test

import (
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/upstream"
)

// TestInfinityKeepsItsPolicyView: WithPolicy through the interface still returns
// a Driver over the same instance.
func TestInfinityKeepsItsPolicyView(t *testing.T) {
	c, err := nexthink.New(nexthink.Config{Instance: "eu", APIURL: "http://127.0.0.1:1", TokenURL: "http://127.0.0.1:1",
		ClientID: "id", ClientSecret: config.Secret("secret")})
	if err != nil {
		t.Fatal(err)
	}
	d := upstream.Infinity(c).WithPolicy(time.Second, time.Second)
	if d.Instance() != "eu" {
		t.Fatalf("instance %q", d.Instance())
	}
	d.CloseIdleConnections()
}
