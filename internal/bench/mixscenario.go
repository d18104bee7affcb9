package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// mixScenario counts the upstream calls that a realistic mix of chatbot requests
// (realisticMix) costs the tenant through `dexbridge run`, at nxsim: NQL execute calls,
// Remote Actions API calls and token calls, per 1000 requests. The baseline is
// computed from the same requests: what chatbots calling Nexthink themselves would
// make (directCalls), plus a token per token lifetime, prorated over the window.
//
// A few executions are triggered and the mix sent for a few seconds before the
// window (so polls have executions to ask about and the processes are warm); the
// counters are read once every execution of the window is final, so the poller's
// calls for the last ones count too.
func mixScenario(ctx context.Context, env Env) ([]Row, error) {
	st, err := startMixStack(ctx, env)
	if err != nil {
		return nil, err
	}
	defer st.close()
	m := st.driver
	fmt.Fprintf(env.Log, "warm-up\n")
	if err := m.seed(ctx, 5); err != nil {
		return nil, err
	}
	openLoop(ctx, env.MixRate, 3*time.Second, m.do)
	if err := waitOpen(ctx, st.db, 0, time.Minute); err != nil {
		return nil, err
	}
	m.reset()
	if err := st.sim.control(ctx, "eu", http.MethodPost, "/_nxsim/counters/reset", nil); err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "the mix at %g/s for %s\n", env.MixRate, env.MixDuration)
	res := openLoop(ctx, env.MixRate, env.MixDuration, m.do)
	if err := waitOpen(ctx, st.db, 0, 2*time.Minute); err != nil {
		return nil, err
	}
	got, err := st.sim.upstream(ctx, "eu")
	if err != nil {
		return nil, err
	}
	st.stop()
	rss := peakRSS(st.proc)

	t := m.totals()
	dNQL, dActions := m.directTotals()
	dTokens := env.MixDuration.Seconds() / directTokenLifetime.Seconds()
	per1000 := func(n float64) string { return fmt.Sprintf("%.1f", n*1000/float64(max(t.sent, 1))) }
	dTotal := float64(dNQL+dActions) + dTokens
	saving := ""
	if got.total() > 0 {
		saving = fmt.Sprintf(" (%.1f times fewer)", dTotal/float64(got.total()))
	}
	rows := []Row{
		setupRow("mix", env, env.Fleet, "dexbridge run (every service, embedded NATS), default limits: cache 500/s, NQL 40/s, Remote Actions 20/s",
			"; baseline computed: the chatbot calling Nexthink itself"),
		{"mix", "offered load (open loop)", fmt.Sprintf("%g req/s for %s: %d requests", env.MixRate, env.MixDuration, res.sent), "the same requests", ""},
	}
	for _, k := range mixKinds(realisticMix()) {
		answers, latency := m.kindSummary(k.kind)
		rows = append(rows, Row{"mix", fmt.Sprintf("%d per 100: %s", k.weight, k.label()), answers + "; " + latency, k.direct(), ""})
	}
	rows = append(rows, []Row{
		{"mix", "upstream calls per 1000 requests (NQL + Remote Actions + token)", per1000(float64(got.total())) + saving, per1000(dTotal), ""},
		{"mix", "  NQL execute calls per 1000 requests", per1000(float64(got.nql)), per1000(float64(dNQL)), ""},
		{"mix", "  Remote Actions API calls per 1000 requests", per1000(float64(got.actions)), per1000(float64(dActions)), ""},
		{"mix", "  token calls per 1000 requests", per1000(float64(got.tokens)), per1000(dTokens) + " (1 per 15 min, prorated)", ""},
		{"mix", "upstream calls in the window", fmt.Sprintf("%d NQL, %d Remote Actions, %d token, %d other", got.nql, got.actions, got.tokens, got.other),
			fmt.Sprintf("%d NQL, %d Remote Actions, %.2f token", dNQL, dActions, dTokens), ""},
		{"mix", "answers: 2xx / 429 / 5xx / other / none", fmt.Sprintf("%d / %d / %d / %d / %d of %d", t.answered2xx, t.tooMany, t.serverErrors, t.otherErrors, t.noAnswer, t.sent), "-", ""},
		{"mix", "peak RSS (dexbridge run)", mib(rss), "-", ""},
	}...)
	return rows, nil
}
