"""``NAME:k=v,...`` specs: how users name a configured thing on the command line.

Used for loss models, codecs and concealments alike: ``split_spec`` parses
the string, ``call_factory`` checks the keys against the factory's signature
so an unknown key gets an error that lists the valid ones.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from lossbench.errors import ConfigError, choices

#: parameters whose values are kept as raw strings
RAW_KEYS = ("file", "segments", "line")


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None


def parse_value(text: str) -> Any:
    """Parse a spec value: int, float, percent, bool or string."""
    t = text.strip()
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
        k, v = item.split("=", 1)
        params[k.strip()] = parse_value(v) if k.strip() not in RAW_KEYS else v.strip()
    return name, params


def _split_top(body: str) -> list[str]:
    """Split on commas not inside parentheses."""
    out, depth, cur = [], 0, []
    for ch in body:
        if ch == "(":
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


def _accepted(factory: Callable[..., Any]) -> tuple[list[str], list[str]]:
    """(accepted keyword names, required names) of a function or a class.

    For a class whose ``__init__`` forwards ``**kwargs`` to its bases, the
    bases' parameters count too.
    """
    funcs = [c.__dict__["__init__"] for c in inspect.getmro(factory) if "__init__" in c.__dict__] \
        if inspect.isclass(factory) else [factory]
    allowed: list[str] = []
    required: list[str] = []
    for i, f in enumerate(funcs):
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


def call_factory(factory: Callable[..., Any], params: Mapping[str, Any], what: str) -> Any:
    """Call ``factory(**params)`` after checking the keys against its signature."""
    allowed, required = _accepted(factory)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise ConfigError(f"{what}: unknown parameter {unknown[0]!r}; valid parameters: {choices(allowed)}")
    missing = [p for p in required if p not in params]
    if missing:
        raise ConfigError(f"{what}: missing parameter {missing[0]!r}; parameters: {choices(allowed)}")
    try:
        return factory(**params)
    except TypeError as exc:  # e.g. a string where a number belongs
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
    return call_factory(registry.get(name), params, f"{registry.kind} {name!r}")
