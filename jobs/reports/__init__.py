"""One module per report family (`premium`, `grid`, `mixture`, `trim`), each giving its report
(Markdown + HTML + figures) and its site page (`site_page`); the shared toolkit (`html`: tables,
escaping, CSS, number formats, matplotlib figures, the site's page model); and the static site
(`site`: the table of families, index, navigation, atomic swap).

May import `jobs.analysis` and everything below it; never a job.
"""
