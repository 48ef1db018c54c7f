"""One router per resource: batches, analyze, knowledge, health."""
