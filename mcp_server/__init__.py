"""The MCP door: the agents as tools and the knowledge as resources for assistants, over stdio or HTTP."""
