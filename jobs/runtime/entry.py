"""The `__main__` of every Spark job: `spark-submit jobs/<job>.py …` lands here.

spark-submit runs a job file as `__main__`. Classes defined there would be pickled
for the Python workers as `__main__.Cell` and fail to unpickle, so the job's main
is always taken from its importable module. Errors map to exit codes: 2 for a
configuration error (message only), 1 for anything else (traceback).
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import NoReturn

from schemas.errors import ConfigError


def run_job(module: str) -> NoReturn:
    """Run `module.main()` and exit with its status."""
    try:
        sys.exit(importlib.import_module(module).main())
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
