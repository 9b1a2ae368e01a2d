"""Prometheus metrics, one registry per process.

Labels stay bounded: event types, queue names, routes, statuses, channels,
providers and tenant slugs — never phone numbers or ids.
"""
from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.http_latency = Histogram(
            "hysbys_http_request_duration_seconds", "HTTP request latency",
            ["service", "method", "route", "status"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.events_published = Counter(
            "hysbys_events_published_total", "Events published to the broker", ["type"], registry=r)
        self.events_consumed = Counter(
            "hysbys_events_consumed_total", "Events handled and acked", ["queue", "type"], registry=r)
        self.events_retried = Counter(
            "hysbys_events_retried_total", "Events sent to a delay queue for a retry",
            ["queue", "type"], registry=r)
        self.events_dead_lettered = Counter(
            "hysbys_events_dead_lettered_total", "Events moved to a dead-letter queue",
            ["queue"], registry=r)
        self.events_duplicate = Counter(
            "hysbys_events_duplicate_total", "Redelivered events the inbox turned into no-ops",
            ["consumer"], registry=r)
        self.notifications = Counter(
            "hysbys_notifications_total", "Notification status changes",
            ["status", "channel", "provider", "tenant"], registry=r)
        self.provider_latency = Histogram(
            "hysbys_provider_request_duration_seconds", "Provider call latency",
            ["provider", "outcome"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.provider_errors = Counter(
            "hysbys_provider_errors_total", "Provider calls that failed", ["provider", "kind"],
            registry=r)
        self.outbox_backlog = Gauge(
            "hysbys_outbox_backlog", "Outbox events not yet published", ["service"], registry=r)
        self.outbox_oldest_age = Gauge(
            "hysbys_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event",
            ["service"], registry=r)
        self.queue_depth = Gauge(
            "hysbys_queue_messages", "Messages ready in a queue", ["queue"], registry=r)
        self.queue_consumers = Gauge(
            "hysbys_queue_consumers", "Consumers attached to a queue", ["queue"], registry=r)
        self.scheduler_lag = Gauge(
            "hysbys_scheduler_lag_seconds", "now minus the due time of the oldest unsent occurrence",
            registry=r)
        self.inbound_messages = Counter(
            "hysbys_inbound_messages_total", "Replies received", ["provider", "keyword"], registry=r)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


METRICS = Metrics()


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.start
        return False
