"""The lowest layer: explicit schemas of every tokatlas dataset (pyarrow only; Spark types
derived), their validation, the error taxonomy (`errors`), the rule for names that become path
components (`names`) and language codes (`languages`).

Imports nothing of the project: every other package may import it.
"""

# Each report's datasets register themselves in DATASETS when their module is imported.
from schemas import grid, mixture, run_log, trim  # noqa: F401
from schemas.datasets import (
    CELL_FAILURES,
    CORPUS,
    CORPUS_COUNTS,
    DATASETS,
    PREMIUM,
    REJECTS,
    TOKEN_COUNTS,
    TOKENIZERS,
    Dataset,
    dataset,
    register,
)
from schemas.errors import SchemaMismatch
from schemas.validate import check_schema, conform, validate

__all__ = [
    "CELL_FAILURES", "CORPUS", "CORPUS_COUNTS", "DATASETS", "PREMIUM", "REJECTS", "TOKEN_COUNTS",
    "TOKENIZERS", "Dataset", "SchemaMismatch", "check_schema", "conform", "dataset", "register", "validate",
]
