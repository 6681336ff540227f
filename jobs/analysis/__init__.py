"""Pure computations, no Spark session and no Prefect: per-sentence counting (`counting`),
vocabulary coverage (`coverage`), grid specs (`grid_spec`), the grid's inequity statistics
(`grid`) and the mixture LP (`mixture/`).

May import `tokenizers_registry` (formats) and everything below it; never a job or a report.
"""
