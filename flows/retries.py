"""The retry rule every flow task shares: retry transient failures, never bad input."""

from __future__ import annotations

from tokenizers_registry.base import ConfigError, TokenizerFileError


def retry_unless_config_error(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: configuration errors and bad tokenizer files fail at once."""
    try:
        state.result()
    except (ConfigError, TokenizerFileError):
        return False
    except Exception:
        return True
    return False
