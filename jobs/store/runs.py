"""A flow run's bookkeeping: `logged_run` writes its run-log rows and then refreshes the catalog.

Apart from `jobs.store.run_log` (the rows) and `jobs.store.catalog` (which reads them), so that
neither of the two needs the other's writer.
"""

from __future__ import annotations

import functools
import inspect
import logging

from jobs.store.catalog import write_catalog
from jobs.store.run_log import _CURRENT, RunRecorder, begin, current_run_id, record, release

log = logging.getLogger(__name__)


def logged_run(flow_name: str, default_params=None):
    """Decorator for a flow function `f(params=None)`: records its run in the run log and
    refreshes `<out>/catalog.json`, whether it returns or raises."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(params=None, *args, **kwargs):
            p = params if params is not None else (default_params() if default_params else None)
            rec = RunRecorder(flow=flow_name, params=p, run_id=current_run_id())
            begin(rec, _out(p))
            token = _CURRENT.set(rec)
            try:
                result = fn(p, *args, **kwargs)
            except BaseException as e:
                _finish(rec, p, "failed", e)
                raise
            finally:
                _CURRENT.reset(token)
            _finish(rec, p, "completed", None)
            return result

        # Annotations resolved in the flow's module: Prefect validates parameters against the
        # signature, resolving names in the wrapper's globals (this module's) otherwise.
        try:
            wrapper.__signature__ = inspect.signature(fn, eval_str=True)
        except NameError:  # e.g. a class local to a function: leave the annotations as strings
            wrapper.__signature__ = inspect.signature(fn)
        return wrapper

    return deco


def _out(params):
    return getattr(params, "out", None) or "tokatlas-out"


def _finish(rec: RunRecorder, params, state: str, error: BaseException | None) -> None:
    out = _out(params)
    try:
        try:
            record(rec, out, state, error)
        finally:
            release(rec, out)
        write_catalog(out)
    except Exception:  # never hide the flow's own result or error behind a logging failure
        log.exception("could not write the run log / catalog under %s", out)
