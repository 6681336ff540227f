"""The corpus sources, named once: what `jobs.ingest` reads and `tokatlas run --corpus-source`
(and the trim flow) accept, which of them need a path, their default corpus names, and the four
a grid spec's `data.train` / `data.eval` may name (FLORES-200 Parquet is spelled `flores` there).
The readers of each source are in `jobs.corpus.readers`; docs/ingest.md describes them.
"""

from __future__ import annotations

SOURCES = ("flores-parquet", "flores-folder", "flores-plus-hub", "udhr", "parquet", "jsonl", "text", "django")
# Without a path: the FLORES+ download folder (~/.cache/tokatlas/flores_plus), the installed Django.
PATH_OPTIONAL = ("flores-plus-hub", "django")
PARQUET_SOURCES = ("flores-parquet", "parquet", "udhr")  # a Parquet file or folder
DEFAULT_CORPUS_NAMES = {"flores-parquet": "flores200", "flores-folder": "flores200", "flores-plus-hub": "flores_plus",
                        "udhr": "udhr", "django": "django"}
# Grid spec source kind -> the corpus source of the same files.
GRID_SOURCES = {"flores": "flores-parquet", "udhr": "udhr", "parquet": "parquet", "text": "text"}
