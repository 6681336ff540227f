"""Entry points: Prefect flows, deployments and the `tokatlas` CLI. Orchestration only.

A flow checks its parameters (`jobs.preflight`), calls job functions through the launcher
(`flows.steps.run_job` → `jobs.runtime.spark.call_job`, in-process or spark-submit), records the
run and renders reports (`flows.steps.publish`). Its parameters are one dataclass, read from flags
and YAML by `jobs.runtime.params`.
Nothing here computes a number. May import everything below it: `jobs`, `tokenizers_registry`,
`schemas`. Layer rule: docs/architecture.md.
"""
