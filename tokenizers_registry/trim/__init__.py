"""Vocabulary trimming machinery shared by every format (see docs/trim.md).

`plan.py` holds the `FormatTrimmer` interface and the keep rule, `bpe.py` the merge closure,
`surgery.py` the embedding-matrix cut. Each format's trimmer is `formats/<format>/trim.py`:

    trimmer = tokenizers_registry.formats.open_trimmer(path, fmt, params)
    plan = plan_keep(trimmer, counts, min_frequency=1, top_n=None, keep_tokens=[...])
    file, loader_params = trimmer.write(plan.keep, out_dir)

Imports `schemas` only.
"""
