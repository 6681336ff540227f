"""Prefect flows and the `tokatlas` CLI: orchestration only, no computation."""
