"""The HTTP door: the FastAPI app, its routes, its own models and the HTTP mapping of errors."""
