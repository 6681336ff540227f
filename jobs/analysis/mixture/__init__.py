"""The data-mixture LP (Hayase et al. 2024), as a chain with no cycle:

    trajectory  pair counts along a tokenizer's merges (what the LP is built from)
    problem     MixtureProblem / MixtureSolution and the rows of the LP
    lazy        LazyLP: HiGHS with rows added lazily; the plain lazy-row method
    cover       the cover problem for a fixed α, shared by the two methods below
    bundle      level bundle method over α alone (large T × n)
    matching    rows named by a maximum-weight matching (the default at large T)
    solve       method dispatch, bootstrap replicates, intervals, loading a problem

Each module imports only the ones above it in this list.
"""
