"""The broker's own limit: raw kombu, no application work.

A publisher process sends N persistent messages of the platform's event size to a
durable queue with publisher confirms (waited for per batch of 500, the same
pattern the platform's relay uses); a consumer process acks each.  The figure is
messages per second from the first publish to the last ack.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import time
import uuid

from kombu import Connection, Exchange, Producer, Queue

QUEUE = "bench.limit"
BATCH = 500


def _body() -> str:
    # about the size of a notification.requested event
    return json.dumps({"id": str(uuid.uuid4()), "type": "notification.requested", "version": 1,
                       "tenant_id": str(uuid.uuid4()), "occurred_at": "2026-11-25T18:00:00+00:00",
                       "correlation_id": None, "data": {
                           "notification_id": str(uuid.uuid4()), "template_id": str(uuid.uuid4()),
                           "channel": "sms", "recipient": "+447700900123", "language": "cy",
                           "personalisation": {"name": "Siân", "round": "A", "uprn": "100100"},
                           "reference": "x" * 60, "urgent": False}})


def _publish(url: str, n: int) -> None:
    body = _body()
    with Connection(url) as conn:
        channel = conn.channel()
        acked = {"n": 0}

        def on_ack(tag, multiple):
            acked["n"] = max(acked["n"], tag) if multiple else acked["n"] + 1
        channel.events["basic_ack"].add(on_ack)
        channel.confirm_select()
        producer = Producer(channel, exchange=Exchange(""))
        sent = 0
        while sent < n:
            for _ in range(min(BATCH, n - sent)):
                producer.publish(body, routing_key=QUEUE, delivery_mode=2,
                                 content_type="application/json")
                sent += 1
            while acked["n"] < sent:
                conn.drain_events(timeout=30)


def _consume(url: str, n: int, done) -> None:
    seen = {"n": 0}

    def on_message(message):
        message.ack()
        seen["n"] += 1

    with Connection(url) as conn:
        queue = Queue(QUEUE, durable=True)
        with conn.Consumer(queue, on_message=on_message, prefetch_count=400):
            while seen["n"] < n:
                conn.drain_events(timeout=60)
    done.value = time.time()


def run(url: str, n: int, timeout: float = 600) -> dict:
    """Publish and consume ``n`` messages on ``url``; messages per second, first publish to
    last ack.  Raises if either side fails or does not finish (never a made-up figure)."""
    with Connection(url) as conn:
        Queue(QUEUE, durable=True)(conn.default_channel).declare()
    ctx = mp.get_context("spawn")
    done = ctx.Value("d", 0.0)
    consumer = ctx.Process(target=_consume, args=(url, n, done))
    consumer.start()
    time.sleep(1.0)          # the consumer is attached before the clock starts
    started = time.time()
    publisher = ctx.Process(target=_publish, args=(url, n))
    publisher.start()
    try:
        publisher.join(timeout)
        consumer.join(max(1.0, timeout - (time.time() - started)))
    finally:
        for proc in (publisher, consumer):
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    if publisher.exitcode != 0 or consumer.exitcode != 0 or not done.value:
        raise RuntimeError(f"the kombu limit run failed (publisher exit {publisher.exitcode}, "
                           f"consumer exit {consumer.exitcode})")
    seconds = done.value - started
    return {"messages": n, "seconds": round(seconds, 3), "messages_per_second": round(n / seconds, 1)}
