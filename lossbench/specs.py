"""``NAME:k=v,...`` specs: how users name a configured thing on the command line.

Used for loss models, codecs and concealments alike: ``split_spec`` parses
the string, ``call_factory`` checks the keys against the factory's signature
so an unknown key gets an error that lists the valid ones.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Union

from lossbench.errors import ConfigError, choices

#: parameters whose values are kept as raw strings
RAW_KEYS = ("file", "segments", "line")


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None


def parse_value(text: str) -> Any:
    """Parse a spec value: int, float, percent, bool or string (a quoted one, ``"..."`` or ``'...'``, stays the
    string between the quotes: a command with spaces and commas)."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1]
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if t.endswith("%"):
        return _number(t[:-1], "percentage") / 100.0
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def split_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``name:k=v,k=v`` or ``name(k=v,k=v)`` into (name, params)."""
    s = spec.strip()
    if not s:
        raise ConfigError("empty model spec")
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*\((.*)\)", s, flags=re.S)
    if m:
        name, body = m.group(1), m.group(2)
    elif ":" in s:
        name, body = s.split(":", 1)
    else:
        name, body = s, ""
    name = name.strip()
    if name.lower() in ("netem",):
        return name, {"line": body.strip()}
    if name.lower() in ("schedule", "time-varying") and body.strip() and not body.strip().startswith("segments="):
        return name, {"segments": body.strip()}
    params: dict[str, Any] = {}
    for item in _split_top(body):
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigError(f"model spec {spec!r}: {item.strip()!r} is not of the form key=value")
        if _quoted_open(item):
            raise ConfigError(f"model spec {spec!r}: a quote is not closed")
        k, v = item.split("=", 1)
        params[k.strip()] = parse_value(v) if k.strip() not in RAW_KEYS else v.strip()
    return name, params


def _quoted_open(item: str) -> bool:
    """Whether a ``key=value`` item's value opens a quote it does not close."""
    v = item.split("=", 1)[1].strip() if "=" in item else ""
    return bool(v) and v[0] in "\"'" and (len(v) < 2 or v[-1] != v[0])


def _split_top(body: str) -> list[str]:
    """Split on commas not inside parentheses or quotes (``"..."``, ``'...'``)."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    quote = ""
    for ch in body:
        if quote:
            if ch == quote:
                quote = ""
            cur.append(ch)
            continue
        if ch in "\"'" and (not cur or "".join(cur).rstrip().endswith("=")):
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _functions(factory: Callable[..., Any]) -> list[Callable[..., Any]]:
    """The functions whose parameters a factory accepts: itself, or a class's ``__init__`` chain."""
    if inspect.isclass(factory):
        return [c.__dict__["__init__"] for c in inspect.getmro(factory) if "__init__" in c.__dict__]
    return [factory]


def _accepted(factory: Callable[..., Any]) -> tuple[list[str], list[str]]:
    """(accepted keyword names, required names) of a function or a class.

    For a class whose ``__init__`` forwards ``**kwargs`` to its bases, the
    bases' parameters count too.
    """
    allowed: list[str] = []
    required: list[str] = []
    for i, f in enumerate(_functions(factory)):
        sig = inspect.signature(f)
        var_kw = False
        for name, p in sig.parameters.items():
            if name == "self" or p.kind == inspect.Parameter.VAR_POSITIONAL:
                continue
            if p.kind == inspect.Parameter.VAR_KEYWORD:
                var_kw = True
                continue
            if name not in allowed:
                allowed.append(name)
            if p.default is inspect.Parameter.empty and i == 0:
                required.append(name)
        if not var_kw:
            return allowed, required
    return allowed, required


def _annotations(factory: Callable[..., Any]) -> dict[str, Any]:
    """Parameter name -> declared type, over the same ``__init__`` chain as :func:`_accepted`."""
    out: dict[str, Any] = {}
    for f in _functions(factory):
        try:
            hints = typing.get_type_hints(f)
        except Exception:  # an annotation that does not resolve: no conversion for that function
            hints = {}
        for k, v in hints.items():
            if k != "return":
                out.setdefault(k, v)
    return out


BOOL_WORDS = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}
_FORMS = {bool: "a boolean (1/0/true/false/yes/no/on/off)", int: "an integer", float: "a number", str: "a string"}


def _to(value: Any, typ: type) -> Any:
    """``value`` as ``typ`` (bool, int, float, str), or raise ValueError."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in BOOL_WORDS:
            return BOOL_WORDS[value.strip().lower()]
        raise ValueError
    if typ is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError
    if typ is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError
    if typ is str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float, str)):
            return str(value)
        raise ValueError
    return value


def convert_param(value: Any, annotation: Any, key: str, what: str) -> Any:
    """Check and convert one spec value against its declared type; a bad one is a ConfigError
    naming the key, the value and the allowed form."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(annotation)):
            return None
    else:
        options = [annotation]
    simple = [o for o in options if o in _FORMS]
    if not simple or len(simple) < len(options):
        return value  # a type we do not convert (a model object, a mapping): the factory checks it
    if isinstance(value, str) and str in simple:
        return value  # text where text is allowed
    for t in simple:  # in the declared order
        try:
            return _to(value, t)
        except (ValueError, TypeError, OverflowError):
            continue
    forms = " or ".join(_FORMS[t] for t in simple)
    raise ConfigError(f"{what}: {key} must be {forms}, got {value!r}")


def call_factory(factory: Callable[..., Any], params: Mapping[str, Any], what: str) -> Any:
    """Call ``factory(**params)`` after checking the keys against its signature and converting
    each value to its declared type. Whatever the factory raises on a bad value becomes a
    ConfigError naming ``what``: a user's spec never ends in another exception type."""
    from lossbench.errors import LossbenchError

    allowed, required = _accepted(factory)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise ConfigError(f"{what}: unknown parameter {unknown[0]!r}; valid parameters: {choices(allowed)}")
    missing = [p for p in required if p not in params]
    if missing:
        raise ConfigError(f"{what}: missing parameter {missing[0]!r}; parameters: {choices(allowed)}")
    hints = _annotations(factory)
    kw = {k: convert_param(v, hints[k], k, what) if k in hints else v for k, v in params.items()}
    try:
        return factory(**kw)
    except LossbenchError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:  # a value the factory refused
        raise ConfigError(f"{what}: {exc}") from None


def build(registry: Any, spec: str | Mapping[str, Any], name_key: str) -> Any:
    """Build a registered thing from ``NAME[:k=v,...]`` or ``{name_key: NAME, k: v, ...}``."""
    if isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop(name_key, None)
        if not isinstance(name, str):
            raise ConfigError(f"{registry.kind} mapping needs a {name_key!r} key naming one of: {choices(registry.names())}")
    else:
        name, params = split_spec(spec)
    try:
        return call_factory(registry.get(name), params, f"{registry.kind} {name!r}")
    except ModuleNotFoundError as exc:  # an optional package the thing needs (torch for a neural codec)
        from lossbench.extras import missing_extra

        raise missing_extra(exc, f"{registry.kind} {name!r}") from None
