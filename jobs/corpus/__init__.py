"""Corpora as rows: readers that turn every supported source into raw rows with one validation
rule (`readers`), and the category samples of mixture inference (`samples`).

May import `jobs.store`, `jobs.runtime` and `schemas`.
"""
