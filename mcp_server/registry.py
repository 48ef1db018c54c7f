"""How the tools are listed: their annotations, argument errors that hide values, compact schemas."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import ConfigDict

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
COMPUTE = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, open_world_hint=False)

# A tool group's entries: the tool function, its title, its annotations.
Entry = tuple[Callable[..., Any], str, ToolAnnotations]

_NULL = {"type": "null"}
_SCHEMA_MAPS = ("properties", "$defs")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMAS = ("items", "additionalProperties", "not")


def tool_list(*groups: list[Entry]) -> list[Tool]:
    """The tools of ``groups``, in order, as the server lists them.

    The tool list is what an assistant reads before every call, so each schema says a thing once: no
    ``title`` that repeats a property name, ``type: [X, "null"]`` for an optional value, no ``default:
    null``. Arguments keep their descriptions, once: a definition an earlier tool's arguments already
    described (the complaint rows) keeps its structure without them. Results carry every field of their
    schema, so output schemas list no ``required`` or defaults and leave the meaning of the fields to the
    tool's description; a definition an earlier tool's output already gave in full is named there instead
    of repeated.
    """
    listing = _Listing()
    tools = []
    for fn, title, hints in (entry for group in groups for entry in group):
        tool = _tool(fn, title, hints)
        tool.parameters = listing.arguments(_compact(tool.parameters, drop=()))
        output = _compact(tool.fn_metadata.output_schema, drop=("description", "required", "default"))
        tool.fn_metadata.output_schema = listing.output(output, tool.name)
        tools.append(tool)
    return tools


def _tool(fn: Callable[..., Any], title: str, hints: ToolAnnotations) -> Tool:
    description = inspect.cleandoc(fn.__doc__ or "")
    tool = Tool.from_function(fn, title=title, description=description, annotations=hints)
    # Argument errors name the field and the rule, never the value: it may be complaint text.
    base = tool.fn_metadata.arg_model
    config = ConfigDict(**{**base.model_config, "hide_input_in_errors": True})
    tool.fn_metadata.arg_model = type(f"{tool.name}_arguments", (base,), {"model_config": config})
    return tool


def _compact(schema: Any, drop: tuple[str, ...]) -> Any:
    """``schema`` without ``title`` and the keywords in ``drop``, with nullable types folded."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" or key in drop:
            continue
        if (key == "default" and value is None) or (key == "additionalProperties" and value is True):
            continue  # what JSON Schema assumes anyway
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _compact(sub, drop) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_compact(sub, drop) for sub in value]
        elif key in _SCHEMAS:
            out[key] = _compact(value, drop)
        else:
            out[key] = value
    return _nullable(out)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, null]`` of a plain type (with its own constraints) as ``type: [X, "null"]``."""
    union = schema.get("anyOf")
    if not isinstance(union, list) or _NULL not in union:
        return schema
    rest = [u for u in union if u != _NULL]
    if all(set(u) == {"type"} and isinstance(u["type"], str) for u in rest):
        kept = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**kept, "type": [u["type"] for u in rest] + ["null"]}
    one = rest[0]
    if len(rest) == 1 and isinstance(one.get("type"), str) and not {"enum", "$ref", "const"} & set(one):
        kept = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**one, **kept, "type": [one["type"], "null"]}
    return schema


class _Listing:
    """What the tools listed so far have said: each thing is said once in the list."""

    def __init__(self) -> None:
        self.described: dict[str, str] = {}  # argument name: its description
        self.inputs: dict[str, Any] = {}  # definition name: its schema
        self.outputs: dict[str, tuple[str, Any]] = {}  # definition name: (tool, its schema)

    def arguments(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Arguments and definitions an earlier tool described keep their structure, not the words."""
        for name, sub in schema.get("properties", {}).items():
            text = sub.get("description")
            if text is not None and self.described.get(name) == text:
                del sub["description"]
            elif text is not None:
                self.described.setdefault(name, text)
        defs = schema.get("$defs", {})
        for name, sub in defs.items():
            if self.inputs.setdefault(name, sub) is not sub and self.inputs[name] == sub:
                defs[name] = _compact(sub, drop=("description",))
        return schema

    def output(self, schema: dict[str, Any] | None, tool: str) -> dict[str, Any] | None:
        """A definition an earlier tool's output gave in full is named, not repeated."""
        if schema is None:
            return None
        defs = schema.get("$defs", {})
        for name, sub in list(defs.items()):
            first, same = self.outputs.setdefault(name, (tool, sub))
            if first != tool and same == sub:
                defs[name] = {"type": "object", "description": f"As in {first}."}
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


def _refs(schema: Any) -> set[str]:
    """The names of the local definitions ``schema`` refers to."""
    if isinstance(schema, list):
        return set().union(*map(_refs, schema))
    if not isinstance(schema, dict):
        return set()
    ref = schema.get("$ref")
    found = {ref.removeprefix("#/$defs/")} if isinstance(ref, str) else set()
    return found.union(*map(_refs, schema.values()))
