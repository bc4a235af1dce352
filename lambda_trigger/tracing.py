"""X-Ray for the Airflow calls: each call through the transport is one subsegment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.transport import ApiCall, ApiResponse, Transport

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer


class TracedTransport:
    """A transport that records every Airflow call as an X-Ray subsegment, then hands it to ``inner``.

    It wraps whatever carries the calls (HTTP, MWAA), so a trace shows each version probe, attempt and
    retry the client made and how long it took, annotated with ``airflow_method``, ``airflow_path`` and
    ``airflow_status`` (searchable: ``annotation.airflow_status = 503``). A call that raises (a timeout, a
    refused connection) is recorded on its subsegment by the X-Ray SDK and raised unchanged. With tracing
    disabled the subsegments are the SDK's no-op ones.
    """

    def __init__(self, inner: Transport, tracer: Tracer) -> None:
        self.inner = inner
        self.tracer = tracer
        self.where = inner.where
        self.max_path = inner.max_path
        self.probe_with_auth = inner.probe_with_auth
        self.unauthorized_hint = inner.unauthorized_hint
        self.forbidden_hint = inner.forbidden_hint

    def known_version(self, timeout: tuple[float, float]) -> str | None:
        """The inner transport's answer; any call it makes goes through its own ``send``, not this one."""
        return self.inner.known_version(timeout)

    def send(self, version: str, call: ApiCall, timeout: tuple[float, float]) -> ApiResponse:
        """``call`` through the inner transport, inside a subsegment named after the method."""
        # "remote": a downstream service, so X-Ray's service map draws Airflow as a node of its own.
        with self.tracer.provider.in_subsegment(f"Airflow {call.method}", namespace="remote") as subsegment:
            subsegment.put_annotation("airflow_method", call.method)
            subsegment.put_annotation("airflow_path", call.path)
            response = self.inner.send(version, call, timeout)
            subsegment.put_annotation("airflow_status", response.status)
            return response

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()
