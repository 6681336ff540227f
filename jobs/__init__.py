"""Spark jobs: plain functions over DataFrames plus a `main(argv)` for spark-submit.

Nothing here imports Prefect.
"""
