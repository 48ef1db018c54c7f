"""The services the doors share: batches, knowledge, tracking, jobs and workers, keys, audit, retention."""
