"""Training: a worker process that trains one run, and the supervisor that starts, watches and controls it.

Nothing here is imported at GUI start-up; torch, transformers and TRL are only imported inside the worker
(and the backends), never by the supervisor, sinks or control channel.
"""
