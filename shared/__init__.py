"""dag-trigger core: cloud events in, exactly one Airflow DAG run per event out.

The flow is one way: a cloud payload is parsed into an :class:`~shared.events.ObjectEvent` or
:class:`~shared.events.MessageEvent`, routing rules turn it into trigger requests, and the Airflow
client (credentials, transport, retries) turns each request into a result. Nothing here imports a
cloud SDK at module level, so a function's cold start pays only for what it uses.
"""
