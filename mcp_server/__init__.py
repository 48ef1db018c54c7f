"""VOC Tracer: mcp_server."""
