"""Report site: `tokatlas site build` and the task every flow ends with.

    tokatlas site build --out OUT      (re)build OUT/index.html and OUT/site/ from OUT's datasets

The build itself is `jobs.reports.site.build_site` (plain Python, a few seconds); the CLI calls it
directly, without starting Prefect. Flows call `rebuild_site(out)` as their last step.
"""

from __future__ import annotations

from flows.prefect_env import configure_prefect_env

configure_prefect_env()  # before Prefect reads its settings

from prefect import get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402


@task(name="report-site", cache_policy=NO_CACHE)
def site_task(out: str) -> str | None:
    """Rebuild the site. A failure is logged, not raised: the flow's datasets are already
    written, and `tokatlas site build --out OUT` rebuilds the site from them."""
    from jobs.reports.site import build_site

    log = get_run_logger()
    try:
        r = build_site(out)
    except Exception as e:  # the site is a view of the results: it must not fail the computation
        log.warning("report site not rebuilt (%s: %s); run: tokatlas site build --out %s", type(e).__name__, e, out)
        return None
    log.info("report site: %s (%s)", r.index, ", ".join(r.pages) or "no report datasets")
    return str(r.index)


def rebuild_site(out) -> str | None:
    """The one call a flow ends with."""
    return site_task(str(out))


def cmd_site(a) -> int:
    from jobs.reports.site import build_site

    r = build_site(a.out)
    for fam, path in r.pages.items():
        print(f"{fam:9s} {path}  ({len(r.figures[fam])} figures)")
    print(f"site: {r.index}" + ("" if r.pages else "  (no report datasets found under this output root)"))
    return 0


def add_cli(subparsers) -> None:
    """Register `tokatlas site build`."""
    p = subparsers.add_parser("site", help="static HTML report site over an output root",
                              description=__doc__.split("\n\n")[0],
                              epilog="example: tokatlas site build --out out/flores")
    sub = p.add_subparsers(dest="site_cmd", required=True)
    b = sub.add_parser("build", help="build OUT/index.html and OUT/site/ from the datasets under OUT",
                       epilog="example: tokatlas site build --out out/flores  (open out/flores/index.html)")
    b.add_argument("--out", default="tokatlas-out", help="output root (default tokatlas-out)")
    p.set_defaults(func=cmd_site)
