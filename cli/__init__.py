"""VOC Tracer: cli."""
