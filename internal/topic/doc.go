// Package topic owns the topics: it reads the topic files in topics/ (one YAML file
// per topic, checked against schemas/config/topic.json), compiles them against the
// remote-action allow-list (internal/allowlist) into what the topic worker runs, and
// evaluates a topic's rules over the fields its queries returned. Every problem names
// its file and the path of the offending key.
//
// Files.Load is the one way to load topics: it reads the topic files, the allow-list
// and the saved-queries file and returns one compiled Set, which the workers, the
// cached-field derivation and the benchmarks use; Files.Check is the same, reported
// by what each problem concerns, for dexbridge check.
//
// # Checks
//
// Compile checks everything that can be checked offline and reports every problem,
// each with its file, path and reason: every query compiles as NQL and has each of its
// $parameters filled; every remote action a topic names (data_collection, the actions
// whose outputs its queries read, its remediations) is in the allow-list with the right
// purpose and runs on the topic's platforms; every rule and remediation param compiles
// and reads only fields the topic's queries list; remediation params name only
// declared inputs and fill every required one. A compiled Set is immutable: a reload
// compiles a new one and swaps it in only when Compile succeeded.
//
// # Rules
//
// Rules and remediation params are CEL expressions over the fields a topic's queries
// return: one row per query, merged, keyed by the fully qualified header names
// ("device.boot.days_since_last_full_boot", "outdated_office_packages"). Dotted names
// work as written:
//
//	device.boot.days_since_last_full_boot > 10
//	remote_action.get_outlook_online_windows.execution.outputs.IsOnline == "No"
//
// A name CEL cannot spell (a segment that is a CEL reserved word, such as package) is
// read as fields["package.name"]. An expression also has now (the evaluation time, a
// timestamp), datetime(x) (an NQL date-time string or timestamp as a timestamp, UTC
// when the text has no zone), CEL's standard library and the cel-go strings extension.
//
// Numbers: every number a field holds (any Go integer or float, json.Number) is a CEL
// double, so that the sum of an int field and a double field works
// (UserGpoAppliedTimeInSeconds + UserGpoDCDiscoveryInSeconds > 10) and comparisons
// with int literals work (cross-type numeric comparisons are on; an int literal that
// is an operand of arithmetic or of a comparison with a field is compiled as a
// double). Strings stay strings, even numeric ones: a version "16.0" or a name "1234"
// is text; a rule that expects a number in text converts it with double(x).
//
// A rule is evaluated only when every field it reads has a value: a field missing
// from the results or null makes it not_evaluated with the reason, as does a run-time
// error (a wrong type) or a result that is not a bool. Such a rule is never reported
// as found or clear.
package topic
