"""How the tools are listed: their annotations, argument errors that hide values, compact schemas."""

from __future__ import annotations

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


def _compact(schema: Any, nullable_types: bool = False) -> Any:
    """A JSON schema without the ``title`` keywords pydantic adds to every property (they repeat
    the property names); with ``nullable_types``, ``anyOf [X, null]`` of plain types becomes
    ``type: [X, "null"]``. The tool list is what an assistant reads before every call."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: _compact(sub, nullable_types) for name, sub in value.items()}
        elif key in ("anyOf", "allOf", "oneOf", "prefixItems") and isinstance(value, list):
            out[key] = [_compact(sub, nullable_types) for sub in value]
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _compact(value, nullable_types)
        else:
            out[key] = value
    union = out.get("anyOf")
    if nullable_types and isinstance(union, list) and all(set(u) == {"type"} for u in union):
        out.pop("anyOf")
        out["type"] = [u["type"] for u in union]
    return out


def register(fn: Callable[..., Any], title: str, annotations: ToolAnnotations) -> Tool:
    tool = Tool.from_function(fn, title=title, annotations=annotations)
    # Argument errors name the field and the rule, never the value: it may be complaint text.
    base = tool.fn_metadata.arg_model
    config = ConfigDict(**{**base.model_config, "hide_input_in_errors": True})
    tool.fn_metadata.arg_model = type(f"{tool.name}_arguments", (base,), {"model_config": config})
    tool.parameters = _compact(tool.parameters)
    tool.fn_metadata.output_schema = _compact(tool.fn_metadata.output_schema, nullable_types=True)
    return tool


def tool_list(*groups: list[Entry]) -> list[Tool]:
    """The tools of ``groups``, in order, as the server lists them."""
    return [register(fn, title, annotations) for group in groups for fn, title, annotations in group]
