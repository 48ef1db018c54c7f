"""VOC Tracer graph: the batch pipeline's state, nodes, wiring and checkpoints, and run_batch."""
