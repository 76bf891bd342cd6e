"""The transform hash: what a feature group's logic is, independent of its formatting.

:func:`transform_hash` covers

- SQL text with comments removed and whitespace collapsed (string literals kept as written);
- a Python function's normalised syntax tree (``ast.dump`` without line numbers, with
  docstrings removed): comments, docstrings, blank lines and formatting do not count;
- recursively, every function or class *of the same module* that the function's code names
  as a global (its helpers), with a guard against cycles;
- a lambda, or a function whose source is not available, by its compiled code (bytecode,
  constants and names).

It does **not** cover the values captured by closures or held in global variables, code
of other modules and packages, or the data.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

__all__ = ["normalise_sql", "transform_hash"]


def normalise_sql(text: str) -> str:
    """SQL without ``--`` / ``/* */`` comments, whitespace collapsed outside quotes.

    Examples
    --------
    >>> normalise_sql("SELECT  a -- the key\\nFROM t /* x */ WHERE s = 'a  b'")
    "SELECT a FROM t WHERE s = 'a  b'"
    """
    out: list[str] = []
    space = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("--", i):
            while i < n and text[i] != "\n":
                i += 1
            space = True
            continue
        if text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = n if close < 0 else close + 2
            space = True
            continue
        if ch.isspace():
            space = True
            i += 1
            continue
        if space and out:
            out.append(" ")
        space = False
        if ch in "'\"`":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def transform_hash(transform: str | Callable[..., Any]) -> str:
    """A SHA-256 of a transform's logic (see the module docstring for what it covers).

    Examples
    --------
    >>> transform_hash("SELECT 1 AS x -- one") == transform_hash("SELECT 1  AS x")
    True
    """
    if isinstance(transform, str):
        text = "sql:" + normalise_sql(transform)
    else:
        text = "python:" + _fingerprint(transform, set())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fingerprint(obj: Any, seen: set[int]) -> str:
    seen.add(id(obj))
    own = _syntax(obj)
    if own is None:
        code = getattr(obj, "__code__", None)
        own = repr(obj) if code is None else _code_text(code)
    helpers = []
    for name, helper in sorted(_helpers(obj).items()):
        if id(helper) not in seen:
            helpers.append(f"{name}={_fingerprint(helper, seen)}")
    return own + "|" + ";".join(helpers)


def _syntax(obj: Any) -> str | None:
    """``ast.dump`` of the function or class definition, docstrings removed."""
    if getattr(obj, "__name__", "") == "<lambda>":
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None
    if not tree.body or not isinstance(
        tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    ):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree.body[0], include_attributes=False)


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return repr((code.co_code.hex(), consts, code.co_names))


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _helpers(obj: Any) -> dict[str, Any]:
    """Functions and classes of ``obj``'s own module that its code names as globals."""
    module = getattr(obj, "__module__", None)
    if isinstance(obj, type):
        codes = [v.__code__ for v in vars(obj).values() if isinstance(v, types.FunctionType)]
        namespace = vars(inspect.getmodule(obj) or types.ModuleType("_"))
    else:
        code = getattr(obj, "__code__", None)
        codes = [] if code is None else [code]
        namespace = getattr(obj, "__globals__", {})
    found: dict[str, Any] = {}
    for code in codes:
        for name in _global_names(code):
            value = namespace.get(name)
            if (
                isinstance(value, (types.FunctionType, type))
                and value is not obj
                and getattr(value, "__module__", None) == module
            ):
                found[name] = value
    return found
