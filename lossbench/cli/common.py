"""Helpers shared by the CLI sub-apps."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from lossbench.errors import LossbenchError
from lossbench.specs import RAW_KEYS, parse_value

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn a LossbenchError into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LossbenchError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]  # the command itself, wrapped (functools.wraps)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict with parsed values."""
    out: dict[str, Any] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise typer.BadParameter(f"{part!r} is not of the form key=value")
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip() if k.strip() in RAW_KEYS else parse_value(v)
    return out
