"""Spark jobs, one module per job (`jobs/<job>.py`: the job functions plus `main(argv)` for
spark-submit), input checks (`preflight`) and the default run's tokenizers (`default_tokenizers`),
over subpackages that import only downward:

    jobs/reports/    one module per report family (Markdown, HTML, site pages) + the toolkit
    jobs/analysis/   pure computations: counting, coverage, grid specs and statistics, mixture LP
    jobs/corpus/     corpus readers and category samples
    jobs/store/      every output path, atomic writes, fingerprints, corpus store, run log, catalog, query
    jobs/runtime/    SparkSession, launcher, cell fan-out, progress, parameters

Nothing here imports Prefect. Layer rule: docs/architecture.md (checked by tests/test_architecture.py).
"""
