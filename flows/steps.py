"""What every flow does around its jobs: run a job function through the launcher with the flow's
Spark options, and end with its report as a Prefect artifact and the report site rebuilt."""

from __future__ import annotations


def run_job(p, family: str, fn, **kwargs):
    """`fn(spark, **kwargs)` through the master, launcher and spark-submit options of flow params
    `p`, as Spark application tokatlas-<family>-<function>; the job's summary as plain data."""
    from jobs.runtime.spark import call_job

    return call_job(fn, kwargs, app_name=f"tokatlas-{family}-{fn.__name__}", master=p.spark_master,
                    launcher=p.spark_launcher, submit_args=p.spark_submit_args)


def slug(s: str) -> str:
    """`s` as an artifact key: lower case, every other character than a letter or digit a '-'."""
    return "".join(c if c.isalnum() else "-" for c in s.lower())


def publish(out, key: str, markdown: str, description: str | None = None) -> None:
    """The flow's last step: its report as Markdown artifact `slug(key)`, then the report site over
    everything under `out`."""
    from prefect.artifacts import create_markdown_artifact

    from flows.site_flow import rebuild_site

    create_markdown_artifact(markdown, key=slug(key), description=description)
    rebuild_site(out)
