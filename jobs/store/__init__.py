"""What is on disk under an output root: every output path and what exists there (`layout`),
atomic writes (`atomic`), input fingerprints (`fingerprint`), the ingested corpus
(`corpus_store`), the run log (`run_log`, rows; `runs`, the flow decorator), the catalog
(`catalog`) and the sandboxed query entry (`query`).

May import `jobs.runtime`, `tokenizers_registry.store` (the filesystem layer) and `schemas`.
"""
