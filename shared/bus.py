"""The kombu bus: publish with confirms, consume with ack-after-commit.

Ack, retry and dead-letter are decided in one place (:meth:`Worker._on_message`):

* the body does not decode or fails its schema: straight to ``<queue>.dlq`` with
  the reason (retrying a poison message cannot help);
* the handler raises: republished through a delay tier with an incremented
  ``x-retries`` header, then acked; after :data:`MAX_RETRIES` it goes to the DLQ
  with the error;
* the handler returns: acked.  Handlers commit their own transaction before
  returning, so a crash before the ack means a redelivery, which the inbox
  turns into a no-op.

Every republish (retry, DLQ, replay) is confirmed before the original is acked,
so no path loses a message.
"""
from __future__ import annotations

import contextlib
import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.mixins import ConsumerMixin

from shared import logs, topology, tracing
from shared.events import EVENT_SCHEMAS, Event, EventError
from shared.metrics import METRICS

log = logging.getLogger(__name__)

MAX_RETRIES = 8
BASE_BACKOFF = 0.5      # seconds; doubled per attempt, capped by the largest delay tier

Handler = Callable[[Event], None]


class PermanentError(Exception):
    """A handler's verdict that retrying cannot succeed: dead-letter at once."""


def backoff(attempt: int, base: float = BASE_BACKOFF, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's variant)."""
    return random.uniform(base, min(cap, base * 2 ** attempt))


@dataclass
class OutgoingMessage:
    event_id: str
    routing_key: str
    body: str
    correlation_id: str | None = None
    traceparent: str | None = None      # W3C trace context, sent as the ``traceparent`` header


def _headers(msg: OutgoingMessage) -> dict:
    headers = {"correlation_id": msg.correlation_id} if msg.correlation_id else {}
    if msg.traceparent:
        headers[tracing.TRACEPARENT] = tracing.current_traceparent() or msg.traceparent
    return headers


def _publish_span(msg: OutgoingMessage):
    """A producer span for an event whose row has a trace (the header then names the span);
    none for one without (nothing to join, and the relay's hot path stays as it was)."""
    if not msg.traceparent:
        return contextlib.nullcontext()
    return tracing.span(f"publish {msg.routing_key}", parent=msg.traceparent,
                        kind=tracing.SpanKind.PRODUCER,
                        attributes={"messaging.system": "rabbitmq",
                                    "messaging.destination.name": topology.EVENTS_EXCHANGE,
                                    "messaging.message.id": msg.event_id,
                                    "hysbys.correlation_id": msg.correlation_id})


class Bus:
    """Connections to the broker, the topology, and the publish side."""

    def __init__(self, url: str, *, quorum: bool = False):
        self.url = url
        self.quorum = quorum
        self.is_memory = url.startswith("memory://")
        self._delayer: _MemoryDelayer | None = None
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------
    def connection(self, *, confirm_each: bool = True) -> Connection:
        """A new connection.  ``confirm_each``: every publish waits for its confirm
        (simple and safe for single messages); the relay turns it off and confirms
        whole batches with :meth:`publish_batch`."""
        options: dict = {}
        if self.is_memory:
            options["polling_interval"] = 0.01
        elif confirm_each:
            options["confirm_publish"] = True
        return Connection(self.url, transport_options=options, heartbeat=30,
                          connect_timeout=5)

    def declare(self, conn: Connection, specs: Iterable[topology.QueueSpec] | None = None) -> None:
        """Declare the exchange, the given queues (default all) and the delay tiers."""
        channel = conn.default_channel
        topology.events_exchange()(channel).declare()
        for spec in specs if specs is not None else topology.QUEUES:
            for q in topology.kombu_queues(spec, quorum=self.quorum, native_dlx=not self.is_memory):
                q(channel).declare()
            if not self.is_memory:
                # a binding an earlier release made and this one dropped (notify.callbacks
                # heard notification.sent until 2026-11): RabbitMQ keeps bindings until
                # told, and unbinding one that is not there is a no-op
                for event_type in sorted(set(EVENT_SCHEMAS) - set(spec.event_types)):
                    channel.queue_unbind(spec.name, topology.EVENTS_EXCHANGE,
                                         routing_key=event_type)
        if not self.is_memory:
            Exchange(topology.DELAY_EXCHANGE, type="headers", durable=True)(channel).declare()
            for q in topology.kombu_delay_queues(quorum=self.quorum):
                self._declare_delay_queue(conn, q)

    @staticmethod
    def _declare_delay_queue(conn: Connection, queue) -> None:
        """Declare a delay tier on its own channel: one an earlier release declared with other
        arguments (before at-least-once dead-lettering) is kept, and the policy
        ``hysbys-delay-queues`` gives it the same settings, rather than stopping the worker."""
        from amqp.exceptions import PreconditionFailed

        channel = conn.channel()
        try:
            queue(channel).declare()
        except PreconditionFailed as exc:
            log.warning("delay queue %s was declared by an earlier release with other "
                        "arguments; keeping it (the hysbys-delay-queues policy applies): %s",
                        queue.name, exc)
        finally:
            try:
                channel.close()
            except Exception as exc:  # noqa: BLE001 - the broker may have closed it already
                log.debug("closing the channel after declaring %s: %s", queue.name, exc)

    # -- publishing --------------------------------------------------------
    def publish(self, conn: Connection, messages: Iterable[OutgoingMessage]) -> int:
        """Publish events to ``hysbys.events``; each is confirmed by the broker."""
        producer = Producer(conn.default_channel, exchange=topology.events_exchange())
        count = 0
        for msg in messages:
            with _publish_span(msg):
                producer.publish(
                    msg.body, routing_key=msg.routing_key, content_type="application/json",
                    content_encoding="utf-8", delivery_mode=2, message_id=msg.event_id,
                    headers=_headers(msg),
                    retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2,
                                              "interval_step": 0.5},
                )
            METRICS.events_published.labels(type=msg.routing_key).inc()
            count += 1
        return count

    def publish_batch(self, conn: Connection, messages: list[OutgoingMessage],
                      confirm_timeout: float = 30.0) -> int:
        """Publish a batch and wait once for the broker to confirm all of it.

        Waiting for each confirm in turn costs a round trip per event; here the
        broker confirms the batch as it persists it (``multiple`` acks), which is
        what makes the relay keep up with bin night.  A nack or a timeout raises,
        and the caller's transaction (the outbox rows) rolls back: the whole batch
        is published again later and the consumers' inboxes absorb the repeats.
        """
        if self.is_memory or not messages or (conn.transport_options or {}).get("confirm_publish"):
            return self.publish(conn, messages)   # each publish is confirmed on its own
        channel = conn.channel()
        # RabbitMQ confirms some tags one by one and others with "multiple" (all up to
        # the tag), in any interleaving: keep both, and count what they cover.
        singles: set[int] = set()
        state = {"upto": 0, "nacked": False}

        def on_ack(tag, multiple):
            if multiple:
                state["upto"] = max(state["upto"], tag)
            else:
                singles.add(tag)

        def on_nack(_tag, _multiple):
            state["nacked"] = True

        def confirmed() -> int:
            return state["upto"] + sum(1 for t in singles if t > state["upto"])

        total = len(messages)
        try:
            channel.events["basic_ack"].add(on_ack)
            channel.events["basic_nack"].add(on_nack)
            channel.confirm_select()
            producer = Producer(channel, exchange=topology.events_exchange())
            for msg in messages:
                with _publish_span(msg):
                    producer.publish(
                        msg.body, routing_key=msg.routing_key, content_type="application/json",
                        content_encoding="utf-8", delivery_mode=2, message_id=msg.event_id,
                        headers=_headers(msg))
            deadline = time.monotonic() + confirm_timeout
            while confirmed() < total and not state["nacked"]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"broker confirmed {confirmed()}/{total}")
                conn.drain_events(timeout=remaining)
            if state["nacked"]:
                raise ConnectionError("broker refused (nacked) part of a batch")
        finally:
            channel.close()
        for msg in messages:
            METRICS.events_published.labels(type=msg.routing_key).inc()
        return len(messages)

    def send_to_queue(self, conn: Connection, queue: str, body, headers: dict,
                      message_id: str | None = None) -> None:
        """Put a message straight into ``queue`` (DLQ, replay) via the default exchange."""
        Producer(conn.default_channel).publish(
            body, exchange="", routing_key=queue, content_type="application/json",
            content_encoding="utf-8", delivery_mode=2, headers=headers, message_id=message_id,
            retry=True)

    def delay(self, conn: Connection, queue: str, body, headers: dict, seconds: float,
              message_id: str | None = None) -> None:
        """Return ``body`` to ``queue`` after about ``seconds`` (rounded up to a tier)."""
        tier = topology.delay_tier(seconds)
        if self.is_memory:
            with self._lock:
                if self._delayer is None:
                    self._delayer = _MemoryDelayer(self)
            self._delayer.schedule(time.monotonic() + tier, queue, body, headers, message_id)
            return
        Producer(conn.default_channel).publish(
            body, exchange=topology.DELAY_EXCHANGE, routing_key=queue,
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers={**headers, "hysbys-delay": str(tier)}, message_id=message_id, retry=True)

    def queue_depth(self, conn: Connection, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) for ``queue``, read from the broker."""
        channel = conn.channel()
        try:
            if self.is_memory:
                return channel._size(queue), 0
            _name, messages, consumers = channel.queue_declare(queue, passive=True)
            return messages, consumers
        finally:
            channel.close()

    def close(self) -> None:
        if self._delayer:
            self._delayer.stop()


class _MemoryDelayer(threading.Thread):
    """Delay tiers for the in-memory transport, which has no TTL dead-lettering.

    The embedded platform loses its in-memory queues on exit anyway; this only
    keeps the retry timing the same as on RabbitMQ.
    """

    def __init__(self, bus: Bus):
        super().__init__(name="memory-delayer", daemon=True)
        self.bus = bus
        self._heap: list = []
        self._cv = threading.Condition()
        self._stopped = False
        self._seq = 0
        self.start()

    def schedule(self, due: float, queue: str, body, headers: dict, message_id) -> None:
        with self._cv:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, queue, body, headers, message_id))
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()

    def run(self) -> None:
        with self.bus.connection() as conn:
            while True:
                with self._cv:
                    while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                        timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                        self._cv.wait(timeout)
                    if self._stopped:
                        return
                    _due, _seq, queue, body, headers, message_id = heapq.heappop(self._heap)
                self.bus.send_to_queue(conn, queue, body, headers, message_id)


class Worker(ConsumerMixin):
    """Consumes a service's queues and hands each event to its handler.

    A handler with a ``batch`` attribute (see :func:`shared.inbox.dispatcher`)
    gets events in batches — up to ``batch_size`` events or ``batch_items`` items
    (an event of a batched type carries up to 1,000), or whatever arrived within
    ``batch_wait`` seconds — in one transaction, which is what lets a worker keep
    up with bin night.  If a batch fails, its events are handled one at a time,
    so one bad event is retried or dead-lettered on its own.
    """

    def __init__(self, bus: Bus, handlers: dict[str, Handler], *, prefetch: int = 400,
                 batch_size: int = 200, batch_wait: float = 0.05, batch_items: int = 2000,
                 name: str = "worker"):
        """``handlers`` maps a queue name to the callable that processes its events."""
        self.bus = bus
        self.handlers = handlers
        self.prefetch = max(prefetch, batch_size)
        self.batch_size = batch_size
        self.batch_items = max(batch_items, batch_size)
        self.batch_wait = batch_wait
        self.name = name
        self.connection = bus.connection()
        self.ready = threading.Event()
        self._buffers: dict[str, list] = {}
        self._oldest: dict[str, float] = {}
        self._items: dict[str, int] = {}

    def run(self, _tokens=1, **kwargs):
        # wake at least every batch_wait seconds so a part-filled batch is flushed
        kwargs.setdefault("safety_interval", self.batch_wait)
        return super().run(_tokens, **kwargs)

    def get_consumers(self, consumer_cls, channel):
        specs = [topology.queue_spec(q) for q in self.handlers]
        self.bus.declare(self.connection, specs)
        self._buffers.clear()   # after a reconnect, unacked messages come again
        consumers = []
        for spec in specs:
            queues = [q for q in topology.kombu_queues(
                spec, quorum=self.bus.quorum, native_dlx=not self.bus.is_memory)
                if q.name == spec.name]
            # on_message: the raw message, undecoded, so a poison body reaches
            # our own dead-letter path instead of kombu's decode-error handler.
            consumers.append(consumer_cls(
                queues=queues, on_message=self._callback(spec.name), accept=["json"],
                prefetch_count=self.prefetch, no_ack=False))
        return consumers

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.ready.set()

    def on_iteration(self):
        if not self.bus.is_memory:
            # a busy consumer may never hit the idle timeout where kombu sends heartbeats
            self.connection.heartbeat_check()
        now = time.monotonic()
        for queue, items in list(self._buffers.items()):
            if items and now - self._oldest[queue] >= self.batch_wait:
                self._flush(queue)

    def on_consume_end(self, connection, channel):
        for queue in list(self._buffers):
            self._flush(queue)

    def on_connection_error(self, exc, interval):
        log.warning("broker connection lost (%s); retrying in %.1fs", exc, interval)

    def _callback(self, queue: str):
        def on_message(message):
            self._on_message(queue, message)
        return on_message

    def _on_message(self, queue: str, message) -> None:
        try:
            event = Event.from_json(message.body,
                                    (message.headers or {}).get(tracing.TRACEPARENT))
        except EventError as exc:
            self._dead_letter(queue, message, dict(message.headers or {}), f"poison: {exc}")
            return
        if getattr(self.handlers[queue], "batch", None) is None:
            self._handle_one(queue, event, message)
            return
        items = self._buffers.setdefault(queue, [])
        if not items:
            self._oldest[queue] = time.monotonic()
            self._items[queue] = 0
        items.append((event, message))
        self._items[queue] += len(event.items)
        if len(items) >= self.batch_size or self._items[queue] >= self.batch_items:
            self._flush(queue)

    def _flush(self, queue: str) -> None:
        self._items.pop(queue, None)
        items = self._buffers.pop(queue, [])
        if not items:
            return
        try:
            self.handlers[queue].batch([event for event, _ in items])  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - isolate the failing event below
            log.warning("batch of %d from %s failed (%s); handling one by one", len(items),
                        queue, exc, extra={"queue": queue})
            for event, message in items:
                self._handle_one(queue, event, message)
            return
        for event, _ in items:
            METRICS.events_consumed.labels(queue=queue, type=event.type).inc()
            METRICS.event_items_consumed.labels(queue=queue, type=event.type).inc(
                len(event.items))
        self._ack_batch([message for _, message in items])

    def _ack_batch(self, messages: list) -> None:
        """Ack a handled batch: one ``basic.ack`` with ``multiple`` for the lot when no
        other message still buffered (another queue's batch, on the same channel) has a
        lower delivery tag; otherwise one ack each.  The in-memory transport ignores
        ``multiple``, so it always acks one by one."""
        top = max(messages, key=lambda m: m.delivery_tag)
        pending = [m.delivery_tag for items in self._buffers.values() for _, m in items]
        if self.bus.is_memory or len(messages) == 1 or any(t < top.delivery_tag for t in pending):
            for message in messages:
                message.ack()
            return
        top.ack(multiple=True)

    def _handle_one(self, queue: str, event: Event, message) -> None:
        headers = dict(message.headers or {})
        token = logs.correlation_id.set(event.correlation_id or headers.get("correlation_id"))
        try:
            self.handlers[queue](event)
        except PermanentError as exc:
            if event.batched and len(event.items) > 1:
                self._split(queue, event, message, headers, exc)
                return
            self._dead_letter(queue, message, headers, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered
            retries = int(headers.get("x-retries", 0))
            if retries >= MAX_RETRIES:
                self._dead_letter(queue, message, headers, f"{type(exc).__name__}: {exc}")
                return
            log.warning("handler failed on %s (attempt %d): %s", event.type, retries + 1, exc,
                        extra={"event_id": event.id, "queue": queue})
            METRICS.events_retried.labels(queue=queue, type=event.type).inc()
            headers["x-retries"] = retries + 1
            headers["x-last-error"] = f"{type(exc).__name__}: {exc}"[:500]
            self.bus.delay(self.connection, queue, _text(message.body), headers,
                           backoff(retries), message_id=str(event.id))
            message.ack()
            return
        finally:
            logs.correlation_id.reset(token)
        METRICS.events_consumed.labels(queue=queue, type=event.type).inc()
        METRICS.event_items_consumed.labels(queue=queue, type=event.type).inc(len(event.items))
        message.ack()

    def _split(self, queue: str, event: Event, message, headers: dict, exc: Exception) -> None:
        """A batch event that one of its items refuses for good (a template gone, a
        number that cannot be texted) goes back to ``queue`` as one event per item, each
        with the id :meth:`Event.expand` gives it, and the batch is acked: the good items
        are handled and the bad one alone is dead-lettered.  Each is confirmed before the
        ack, so a crash in between sends the items again, and their inbox rows drop the
        repeats (the batch's own transaction never committed, so nothing was done twice)."""
        singles = event.expand()
        log.warning("batch event %s (%s, %d items) refused for good (%s); handling its "
                    "items one by one", event.id, event.type, len(singles), exc,
                    extra={"event_id": str(event.id), "queue": queue})
        carried = {k: v for k, v in headers.items() if not k.startswith("x-")}
        for single in singles:
            self.bus.send_to_queue(self.connection, queue, single.to_json(), carried,
                                   message_id=str(single.id))
        METRICS.events_split.labels(queue=queue, type=event.type).inc()
        message.ack()

    def _dead_letter(self, queue: str, message, headers: dict, reason: str) -> None:
        log.error("dead-lettering a message from %s: %s", queue, reason, extra={"queue": queue})
        headers.update({"x-error": reason[:1000], "x-original-queue": queue,
                         "x-dead-lettered-at": time.time()})
        self.bus.send_to_queue(self.connection, queue + topology.DLQ_SUFFIX, _text(message.body),
                               headers, message_id=message.properties.get("message_id"))
        METRICS.events_dead_lettered.labels(queue=queue).inc()
        message.ack()


def _text(body) -> str | bytes:
    if isinstance(body, (bytes, bytearray)):
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(body)
    return body


def drain_queue(bus: Bus, conn: Connection, queue: str, limit: int | None = None):
    """Yield (body, headers, message) from ``queue`` without consuming acks.

    Used by ``hysbys dlq``: the caller acks what it has dealt with.
    """
    channel = conn.channel()
    q = Queue(queue, channel=channel, no_declare=True)
    taken = 0
    try:
        while limit is None or taken < limit:
            message = q.get(no_ack=False, accept=["json", "text/plain"])
            if message is None:
                return
            taken += 1
            yield message
    finally:
        channel.close()


__all__ = [
    "Bus",
    "Consumer",
    "OutgoingMessage",
    "PermanentError",
    "Worker",
    "backoff",
    "drain_queue",
]
