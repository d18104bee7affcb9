package nxsim_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/dexbridge/dexbridge/internal/nxsim"
)

func Example() {
	in, err := nxsim.Start(context.Background(), nxsim.Config{
		Addr: "127.0.0.1:0", FleetSize: 100,
		TopicsDir: "../../topics", QueriesFile: "../../config/queries.yaml",
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer in.Close()
	req, _ := http.NewRequest(http.MethodPost, in.TenantURL("eu")+"/oauth2/default/v1/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("eu-client", "eu-client-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}
