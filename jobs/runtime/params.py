"""The one parameters module: flags and YAML become a flow's params dataclass, for every command.

`params_from(cls, values, source, config=...)` is the one place where flow parameters from a
YAML `--config`, the command line or a deployment become a params dataclass: unknown keys and
values of the wrong type are a ConfigError naming the file and the field, before anything runs.
`parse_command_line` + `params_from_args` are its command-line side (options typed win over the file);
`add_spark_options` declares the Spark options of every flow command and job `main(argv)`.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import fields
from pathlib import Path

from schemas.errors import ConfigError
from schemas.names import printable


def csv_list(s: str | None) -> list[str] | None:
    """'a, b,,c' -> ['a', 'b', 'c']; None or '' -> None."""
    return [x.strip() for x in s.split(",") if x.strip()] or None if s else None


def load_config(path) -> dict:
    """A YAML file of parameters as a mapping; ConfigError naming the file (and line) otherwise."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:  # problem and position only: no excerpt of the file
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({type(e).__name__})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping (`key: value` lines), got {_kind(doc)}")
    return doc


def params_from(cls, values: dict, source: str, *, config=None):
    """`cls(**values)`, each value checked against its field's type; a YAML `config` file
    supplies values that `values` (named `source` in errors, e.g. "command line") override."""
    merged = coerce_fields(cls, load_config(config), str(config)) if config else {}
    merged.update(coerce_fields(cls, values, source))
    return cls(**merged)


def given(a, cls, **renamed) -> dict:
    """The options of argparse namespace `a` that name a field of `cls` and were given: those in
    `a.given_dests` (set by the CLI's main), else those not None. `renamed`: field -> option dest."""
    explicit = getattr(a, "given_dests", None)
    out = {}
    for f in fields(cls):
        dest = renamed.get(f.name, f.name)
        v = getattr(a, dest, None)
        if v is not None and (explicit is None or dest in explicit):
            out[f.name] = v
    return out


def params_from_args(cls, a):
    """`cls` from `--config` (if given) and the options of namespace `a` that name its fields, which
    win; `cls.OPTION_PARSERS` (field -> function) turns a field's command-line value into its type."""
    values = given(a, cls)
    for name, parse in getattr(cls, "OPTION_PARSERS", {}).items():
        if name in values:
            values[name] = parse(values[name])
    return params_from(cls, values, "command line", config=getattr(a, "config", None))


def parse_command_line(build_parser, argv: list[str] | None = None) -> argparse.Namespace:
    """`build_parser().parse_args(argv)`, with `given_dests`: the options typed on the command line
    (not defaults), found by parsing again with every default suppressed, so that `--config`
    values are overridden only by options the user typed (see `given`)."""
    args = build_parser().parse_args(argv)
    parser = build_parser()
    stack = [parser]
    while stack:
        p = stack.pop()
        p._defaults.clear()
        for action in p._actions:
            action.default = argparse.SUPPRESS
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    args.given_dests = set(vars(parser.parse_args(argv)))
    return args


def add_spark_options(p: argparse.ArgumentParser, *, launcher: bool = True) -> None:
    """`--spark-master`, and with `launcher` `--spark-launcher` and `--spark-submit-arg` (repeatable):
    the Spark options of every flow command (fields spark_master, spark_launcher, spark_submit_args
    of its params) and, master only, of every job's `main(argv)`."""
    from jobs.runtime.spark import LAUNCHERS

    p.add_argument("--spark-master", help="Spark master URL (default local[*] or $TOKATLAS_SPARK_MASTER)")
    if launcher:
        p.add_argument("--spark-launcher", choices=LAUNCHERS,
                       help="run Spark steps in this process or each in a spark-submit'ed driver "
                            "(default in-process or $TOKATLAS_SPARK_LAUNCHER)")
        p.add_argument("--spark-submit-arg", action="append", dest="spark_submit_args", metavar="ARG",
                       help="extra spark-submit argument, repeatable, e.g. --spark-submit-arg=--archives "
                            "--spark-submit-arg=env.tar.gz#env (launcher spark-submit only)")


def parse_language_sets(values: list[str]) -> dict[str, list[str]]:
    """`--language-set NAME=lang,lang,...` options as a mapping; ConfigError naming a malformed one."""
    out = {}
    for v in values:
        name, sep, langs = v.partition("=")
        if not sep or not name.strip() or not csv_list(langs):
            raise ConfigError(f"--language-set {v!r}: expected NAME=lang,lang,... (e.g. europe=deu_Latn,fra_Latn)")
        out[name.strip()] = csv_list(langs)
    return out


def coerce_fields(cls, values: dict, source: str) -> dict:
    """`values` checked against the field types of dataclass `cls` (unknown keys, wrong types)."""
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    unknown = [k for k in values if k not in known]
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(map(str, unknown))}; known: {', '.join(known)}")
    return {k: _coerce(v, hints[k], source, k) for k, v in values.items()}


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {_describe(args[0]).split(' ', 1)[-1]}s"
    if origin is dict:
        return f"a mapping of names to {_describe(args[1])}"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _kind(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(v), type(v).__name__)


def _coerce(value, tp, source: str, where: str):
    """`value` as type `tp`, or ConfigError. No silent conversion: only a comma-separated string
    becomes a list (as on the command line), and its items are parsed as numbers when asked."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    ok, out = _try(value, tp, origin, args, source, where)
    if ok:
        return out
    shown = printable(repr(value))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise ConfigError(f"{source}: {where} must be {_describe(tp)}, got {shown} ({_kind(value)})")


def _try(value, tp, origin, args, source, where):
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return type(None) in args, None
        for a in args:
            if a is not type(None):
                ok, out = _try(value, a, typing.get_origin(a), typing.get_args(a), source, where)
                if ok:
                    return True, out
        return False, None
    if tp is bool or tp is str:
        return isinstance(value, tp), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), float(value) \
            if isinstance(value, (int, float)) else None
    if origin in (list, tuple):
        elem = args[0]
        if isinstance(value, str):
            items = csv_list(value) or []
            if elem in (int, float):  # text from a command line or a comma list: parse the numbers
                try:
                    items = [elem(x) for x in items]
                except ValueError:
                    return False, None
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            return False, None
        out = [_coerce(v, elem, source, f"{where}[{i}]") for i, v in enumerate(items)]
        return True, tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            return False, None
        return True, {_coerce(k, args[0], source, f"{where} key"): _coerce(v, args[1], source, f"{where}.{k}")
                      for k, v in value.items()}
    raise ConfigError(f"{source}: {where} cannot be set here (a {_describe(tp)} is built in Python)")
