// Package deploy holds dexbridge's Kubernetes manifests (kubernetes/, applied with
// `kubectl apply -k deploy/kubernetes`) and the tests that check them, and the
// repository's compose.yaml, against dexbridge itself: its commands and services, the
// variables it reads, its configuration checks and its health endpoints. It has no
// code of its own; its dependencies (the compose and Kubernetes libraries) are the
// tests' only.
package deploy
