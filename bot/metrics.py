"""Prometheus metrics of one bot process, served at ``/metrics``.

Each process has its own registry (tests run several in one interpreter); a scrape sums
the replicas.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Reply latency buckets in seconds: the lexical engine answers in milliseconds, Rasa in tens.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Counters and histograms the channel adapters update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter("portpal_updates", "Updates handled, by kind.", ["kind"], registry=r)
        self.duplicates = Counter(
            "portpal_duplicate_updates", "Updates received again and not applied twice.", registry=r
        )
        self.reply_latency = Histogram(
            "portpal_reply_seconds",
            "From receiving an update to its last reply accepted by the Bot API.",
            buckets=_BUCKETS,
            registry=r,
        )
        self.nlu = Counter("portpal_nlu_engine", "Messages understood, by NLU engine.", ["engine"], registry=r)
        self.errors = Counter("portpal_errors", "Errors, by where they happened.", ["where"], registry=r)
        self.sent = Counter(
            "portpal_bot_api_sent", "Replies accepted by the Bot API, by method.", ["method"], registry=r
        )
        self.webhook_rejected = Counter(
            "portpal_webhook_rejected", "Webhook requests refused (wrong secret token).", registry=r
        )
        self._outbox = Gauge("portpal_outbox_pending", "Replies committed and not yet delivered.", registry=r)

    def track_outbox(self, size: Callable[[], int]) -> None:
        """Read the outbox size at each scrape."""
        self._outbox.set_function(lambda: float(size()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
