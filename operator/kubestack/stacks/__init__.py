"""The Stack engine (Heat): builds a HOT template out of kubestack's own kinds, level-triggered.

Every pass reads the Stack, its record and its children, does the next steps of its action
and writes what changed. It talks to the API server only through the `cluster.Cluster` port
(`kube.KubeCluster` on the real one); what it decides is pure and lives in
`kubestack.orchestration` (the record, rows and status, signals, sizes, removal order).

- `reconcile` — the state machine: a new spec generation starts an action, which converges,
  removes what is no longer wanted, completes, fails, rolls back; deletion.
- `converge` — one pass over the template's resources (`Pass`).
- `cleanup` — removing what the stack no longer has.
- `inputs` — what the spec asks for (template, parameters, files, environment).
- `state_secret` — where the record is kept.
- `cluster`, `kube` — the port and its kubernetes client implementation.

`kubestack.controllers.stack` wires it to kopf's watch events and a work queue.
"""
