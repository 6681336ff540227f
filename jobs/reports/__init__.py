"""One module per report family (`premium`, `inequity`, `trim`; mixture tables come from
`jobs.mixture_eval`), the shared toolkit (`html`: tables, escaping, CSS) and the static site
(`site`: one page per family from the datasets).

May import `jobs.analysis` and everything below it; never a job.
"""
