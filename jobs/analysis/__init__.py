"""Pure computations, no Spark session and no Prefect: per-sentence counting (`counting`),
vocabulary coverage (`coverage`), grid specs (`grid_spec`), inequity statistics (`inequity`) and
the mixture LP (`mixture/`).

May import `tokenizers_registry` (formats) and everything below it; never a job or a report.
"""
