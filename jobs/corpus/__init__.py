"""Corpora as rows: the names of the corpus sources (`sources`), readers that turn every one of
them into raw rows with one validation rule (`readers`), and the category samples of mixture
inference (`samples`).

May import `jobs.store`, `jobs.runtime` and `schemas`.
"""
