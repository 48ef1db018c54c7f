"""How the tools are listed: their annotations, argument errors that hide values, compact schemas."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import ConfigDict

# Only what differs from the spec's defaults: idempotentHint means something only for a tool that
# writes, and readOnlyHint is false unless said.
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(open_world_hint=False)

# A tool group's entries: the tool function, its title, its annotations.
Entry = tuple[Callable[..., Any], str, ToolAnnotations]

_NULL = {"type": "null"}
_PYTHON: dict[str, type] = {"string": str, "integer": int, "boolean": bool}
_SCHEMA_MAPS = ("properties", "$defs")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMAS = ("items", "additionalProperties", "not")


def tool_list(*groups: list[Entry]) -> list[Tool]:
    """The tools of ``groups``, in order, as the server lists them.

    The tool list is what an assistant reads before every call, so each schema says a thing once: no
    ``title`` that repeats a property name, ``type: [X, "null"]`` for an optional value, no ``default:
    null``. Arguments keep their descriptions, once; a definition an earlier tool's arguments already gave
    in full (the complaint rows) is named there instead of repeated. Results carry every field of their
    schema, so output schemas list no ``required`` or defaults, no ``type`` another keyword implies, and
    leave the meaning of the fields to the tool's description; a definition an earlier tool's output
    already gave in full is named there instead of repeated. Such a pointer used once stands where it
    is used, not under ``$defs``.
    """
    listing = _Listing()
    tools = []
    for fn, title, hints in (entry for group in groups for entry in group):
        tool = _tool(fn, title, hints)
        tool.parameters = listing.arguments(_compact(tool.parameters, drop=()), tool.name)
        output = _compact(tool.fn_metadata.output_schema, ("description", "required", "default"), result=True)
        tool.fn_metadata.output_schema = listing.output(output, tool.name)
        tools.append(tool)
    # A definition no other tool names and only one place uses is written where it is used.
    named = Counter(
        name
        for tool in tools
        for schema in (tool.parameters, tool.fn_metadata.output_schema)
        for name in (schema or {}).get("$defs", {})
    )
    keep = {name for name, n in named.items() if n > 1}
    for tool in tools:
        # A pointer to an earlier tool's definition, used once, goes where it is used like any other.
        inputs, outputs = listing.pointers(tool.name)
        tool.parameters = _inline(tool.parameters, keep - inputs)
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = _inline(tool.fn_metadata.output_schema, keep - outputs)
    return tools


def _tool(fn: Callable[..., Any], title: str, hints: ToolAnnotations) -> Tool:
    # One line per paragraph: a docstring's line breaks are layout, not meaning.
    description = re.sub(r"(?<!\n)\n(?!\n)", " ", inspect.cleandoc(fn.__doc__ or ""))
    tool = Tool.from_function(fn, title=title, description=description, annotations=hints)
    # Argument errors name the field and the rule, never the value: it may be complaint text.
    base = tool.fn_metadata.arg_model
    config = ConfigDict(**{**base.model_config, "hide_input_in_errors": True})
    tool.fn_metadata.arg_model = type(f"{tool.name}_arguments", (base,), {"model_config": config})
    return tool


def _compact(schema: Any, drop: tuple[str, ...], result: bool = False) -> Any:
    """``schema`` without ``title`` and the keywords in ``drop``, with nullable types folded.

    In a ``result`` schema a nested ``type`` that another keyword already says is left out too: an
    ``enum`` of strings, ``properties`` (an object), ``items`` (an array). Argument schemas keep every
    ``type``: some clients translate them into their own function declarations, which need it.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" or key in drop:
            continue
        if (key == "default" and value is None) or (key == "additionalProperties" and value is True):
            continue  # what JSON Schema assumes anyway
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _implied(_compact(sub, drop, result), result) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_implied(_compact(sub, drop, result), result) for sub in value]
        elif key in _SCHEMAS:
            out[key] = _implied(_compact(value, drop, result), result)
        else:
            out[key] = value
    return _nullable(out)


def _implied(schema: Any, result: bool) -> Any:
    """A nested result schema without the ``type`` its other keywords already say."""
    if not result or not isinstance(schema, dict) or not isinstance(schema.get("type"), str):
        return schema
    kind = schema["type"]
    values = schema.get("enum")
    said = (
        (isinstance(values, list) and all(type(v) is _PYTHON.get(kind) for v in values))
        or (
            kind == "object"
            and ("properties" in schema or isinstance(schema.get("additionalProperties"), dict))
        )
        or (kind == "array" and "items" in schema)
    )
    return {k: v for k, v in schema.items() if k != "type"} if said else schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, null]`` of a plain type (with its own constraints) as ``type: [X, "null"]``, and of a
    choice as the choices and null."""
    union = schema.get("anyOf")
    if not isinstance(union, list) or _NULL not in union:
        return schema
    rest = [u for u in union if u != _NULL]
    kept = {k: v for k, v in schema.items() if k != "anyOf"}
    one = rest[0]
    if len(rest) == 1 and isinstance(one.get("enum"), list) and set(one) <= {"enum", "type"}:
        choice = {**kept, "enum": [*one["enum"], None]}
        return {**choice, "type": [one["type"], "null"]} if isinstance(one.get("type"), str) else choice
    if all(set(u) == {"type"} and isinstance(u["type"], str) for u in rest):
        return {**kept, "type": [u["type"] for u in rest] + ["null"]}
    if len(rest) == 1 and isinstance(one.get("type"), str) and not {"enum", "$ref", "const"} & set(one):
        return {**one, **kept, "type": [one["type"], "null"]}
    return schema


class _Listing:
    """What the tools listed so far have said: each thing is said once in the list."""

    def __init__(self) -> None:
        self.described: dict[str, str] = {}  # argument name: its description
        self.inputs: dict[str, tuple[str, Any]] = {}  # definition name: (tool, its schema)
        self.outputs: dict[str, tuple[str, Any]] = {}  # definition name: (tool, its schema)
        self.named: dict[tuple[str, str], set[str]] = {}  # (tool, "in" or "out"): definitions pointed to

    def pointers(self, tool: str) -> tuple[set[str], set[str]]:
        """The definitions ``tool``'s arguments and result name instead of repeating them."""
        return self.named.get((tool, "in"), set()), self.named.get((tool, "out"), set())

    def arguments(self, schema: dict[str, Any], tool: str) -> dict[str, Any]:
        """Arguments an earlier tool described keep their structure, not the words; a definition an
        earlier tool's arguments gave in full is named."""
        for name, sub in schema.get("properties", {}).items():
            text = sub.get("description")
            if text is not None and self.described.get(name) == text:
                del sub["description"]
            elif text is not None:
                self.described.setdefault(name, text)
        defs = schema.get("$defs", {})
        for name, sub in defs.items():
            first, same = self.inputs.setdefault(name, (tool, sub))
            if first != tool and same == sub:
                defs[name] = {"type": "object", "description": f"As in {first}."}
                self.named.setdefault((tool, "in"), set()).add(name)
        return schema

    def output(self, schema: dict[str, Any] | None, tool: str) -> dict[str, Any] | None:
        """A definition an earlier tool's output gave in full is named, not repeated."""
        if schema is None:
            return None
        defs = schema.get("$defs", {})
        for name, sub in list(defs.items()):
            first, same = self.outputs.setdefault(name, (tool, sub))
            if first != tool and same == sub:
                defs[name] = {"description": f"As in {first}."}
                self.named.setdefault((tool, "out"), set()).add(name)
        # Drop what only the named definitions used (a ProblemView's ProposalView, say).
        used = _refs({k: v for k, v in schema.items() if k != "$defs"})
        todo = list(used)
        while todo:
            for ref in _refs(defs.get(todo.pop(), {})) - used:
                used.add(ref)
                todo.append(ref)
        for name in set(defs) - used:
            del defs[name]
        return schema


def _inline(schema: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """``schema`` with each definition outside ``keep`` that is used once put in place of its use."""
    if not schema.get("$defs"):
        return schema
    defs = dict(schema["$defs"])
    uses = Counter(_ref_list(schema))
    once = {name for name in defs if uses[name] == 1 and name not in keep and name not in _refs(defs[name])}

    def put(node: Any) -> Any:
        if isinstance(node, list):
            return [put(x) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        name = ref.removeprefix("#/$defs/") if isinstance(ref, str) and len(node) == 1 else None
        if name in once:
            return put(defs[name])
        return {k: put(v) for k, v in node.items()}

    kept = {name: put(sub) for name, sub in defs.items() if name not in once}
    out = {k: put(v) for k, v in schema.items() if k != "$defs"}
    return {"$defs": kept, **out} if kept else out


def _ref_list(schema: Any) -> list[str]:
    """Every use of a local definition in ``schema``, once per use."""
    if isinstance(schema, list):
        return [name for x in schema for name in _ref_list(x)]
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    here = [ref.removeprefix("#/$defs/")] if isinstance(ref, str) else []
    return here + [name for v in schema.values() for name in _ref_list(v)]


def _refs(schema: Any) -> set[str]:
    """The names of the local definitions ``schema`` refers to."""
    if isinstance(schema, list):
        return set().union(*map(_refs, schema))
    if not isinstance(schema, dict):
        return set()
    ref = schema.get("$ref")
    found = {ref.removeprefix("#/$defs/")} if isinstance(ref, str) else set()
    return found.union(*map(_refs, schema.values()))
