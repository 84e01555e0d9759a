"""The webhook relay's Prometheus metrics. Labels are bounded: an attempt's result and
failure cause, an endpoint state, an intake verdict; never an endpoint id, URL or key
(endpoints are as many as users register)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["FAILURE_CAUSES", "RelayMetrics"]

# Why an attempt failed, as `stockflow_webhook_attempt_failures_total{cause}` counts it:
# the HTTP status class, or what kept a response from coming.
FAILURE_CAUSES = ("http_3xx", "http_4xx", "http_5xx", "http_other", "timeout", "refused",
                  "tls", "connect", "disconnected", "protocol", "unresolved", "client",
                  "ssrf", "internal")

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)


class RelayMetrics:
    """The webhook relay's Prometheus metrics in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.read = Counter(
            "stockflow_webhook_events_read_total", "Output events the relay's intake read, by "
            "verdict: matched (queued for an endpoint), unmatched, unreadable (skipped)",
            ["verdict"], registry=registry)
        self.queued = Counter("stockflow_webhook_deliveries_queued_total",
                              "Deliveries added to the queue (one per endpoint and event)",
                              registry=registry)
        self.attempts = Counter(
            "stockflow_webhook_attempts_total", "Delivery attempts by result: delivered, "
            "retrying (failed, another attempt is scheduled), exhausted (failed, none left)",
            ["result"], registry=registry)
        self.failures = Counter(
            "stockflow_webhook_attempt_failures_total", "Failed attempts by cause: the HTTP "
            "status class, timeout, refused, tls, connect, disconnected, protocol, "
            "unresolved, client, ssrf (the guard refused the address), internal",
            ["cause"], registry=registry)
        self.latency = Histogram("stockflow_webhook_attempt_duration_seconds",
                                 "Time from connecting to the receiver's answer (or the "
                                 "failure) of one attempt", buckets=_SECONDS, registry=registry)
        self.pending = Gauge("stockflow_webhook_queue_pending",
                             "Deliveries an enabled endpoint will attempt, due now or later",
                             registry=registry)
        self.oldest = Gauge("stockflow_webhook_queue_oldest_due_seconds",
                            "How long the longest-waiting due delivery of an enabled "
                            "endpoint has been due", registry=registry)
        self.held = Gauge("stockflow_webhook_queue_held",
                          "Pending deliveries of disabled endpoints, attempted only once "
                          "their endpoint is enabled again", registry=registry)
        self.endpoints = Gauge("stockflow_webhook_endpoints", "Registered endpoints by state",
                               ["state"], registry=registry)
        self.disabled = Counter(
            "stockflow_webhook_endpoints_disabled_total", "Endpoints the relay disabled, by "
            "cause: gone (the receiver answered 410), failing (no success for "
            "STOCKFLOW_WEBHOOK_DISABLE_AFTER)", ["cause"], registry=registry)
        self.outages = Counter("stockflow_webhook_db_outages_total",
                               "Postgres outages the relay waited out", registry=registry)
        for verdict in ("matched", "unmatched", "unreadable"):
            self.read.labels(verdict)
        for result in ("delivered", "retrying", "exhausted"):
            self.attempts.labels(result)
        for cause in FAILURE_CAUSES:
            self.failures.labels(cause)
        for state in ("enabled", "disabled"):
            self.endpoints.labels(state)
        for cause in ("gone", "failing"):
            self.disabled.labels(cause)
