"""The retry rule every flow task shares: retry transient failures, never bad input or a full disk."""

from __future__ import annotations

import errno
import re

from schemas.errors import ConfigError, TokenizerFileError, TransientError

# OS errors that a retry a few seconds later meets again: a full disk or quota, a read-only
# file system, a permission or a file that is missing.
PERMANENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                              errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})
# The same errors raised in a Spark Python worker or a spark-submit'ed driver arrive as text:
# Python's "OSError: [Errno 28] …", or the JVM's message for a full or read-only disk.
_PY_ERRNO = re.compile(r"\[Errno (\d+)\]")
_JVM_PERMANENT = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def is_transient(exc: BaseException) -> bool:
    """True unless `exc` (or what caused it) is bad input or a permanent OS error; a
    TransientError is always transient."""
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, TransientError):
            return True
        if isinstance(e, (ConfigError, TokenizerFileError)):
            return False
        if isinstance(e, OSError) and e.errno is not None:
            return e.errno not in PERMANENT_ERRNOS
        text = str(e)
        if any(int(n) in PERMANENT_ERRNOS for n in _PY_ERRNO.findall(text)) or any(m in text for m in _JVM_PERMANENT):
            return False
        e = e.__cause__ or e.__context__
    return True


def retry_unless_config_error(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: retry only what `is_transient` accepts."""
    try:
        state.result()
    except Exception as e:
        return is_transient(e)
    return False
