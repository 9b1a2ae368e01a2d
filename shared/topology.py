"""The broker topology, declared in one place and named by one rule.

* One topic exchange, ``hysbys.events``; the routing key is the event type.
* Each consuming queue is ``<service>.<purpose>``, bound to the event types its
  handlers take.  Its dead-letter queue is ``<queue>.dlq``.
* Retries wait in shared delay queues ``hysbys.delay.<seconds>s`` (a headers
  exchange picks the tier, the queue's TTL holds the message, and dead-lettering
  through the default exchange returns it to the queue it came from).

``deploy/rabbitmq/definitions.json`` and docker-compose are checked against this
module by ``tests/unit/test_deploy_files.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from kombu import Exchange, Queue

EVENTS_EXCHANGE = "hysbys.events"
DELAY_EXCHANGE = "hysbys.delay"
DELAY_TIERS = (1, 5, 30, 120, 600)   # seconds; a retry waits in the first tier >= its backoff
DLQ_SUFFIX = ".dlq"
# Dead letters carry recipients and personalisation: a message left in a ``<queue>.dlq``
# is dropped this long after it was dead-lettered (replay or inspect it before); the
# policy is in deploy/rabbitmq/definitions.json.  Inboxes remember an event id a day
# longer, so a replay is still recognised (shared/inbox.py).
DLQ_TTL_DAYS = 14


@dataclass(frozen=True)
class QueueSpec:
    name: str
    service: str
    event_types: tuple[str, ...]
    purpose: str

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


_TENANCY = ("tenant.changed", "api_key.revoked")
_NOTIFICATION_OUTCOMES = ("notification.sent", "notification.delivered", "notification.failed",
                          "notification.suppressed", "notification.deferred")

QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("notify.requests", "notify", ("notification.requested",),
              "notifications asked for by the scheduler and the inbound auto-replies"),
    # Callbacks go out only on a final outcome, as GOV.UK Notify sends them: binding
    # notification.sent too would copy every bin-night text into a queue that drops it.
    QueueSpec("notify.callbacks", "notify", ("notification.delivered", "notification.failed"),
              "delivery-status callbacks to each tenant's own URL (recorded here, sent after commit)"),
    QueueSpec("notify.events", "notify",
              ("subscriber.opted_out", "subscriber.opted_in", "inbound.message.received",
               "service_request.created", "audit.recorded"),
              "suppression list, received texts, the open-data counts and the audit log"),
    # Inbound needs only notification.sent (the context of a reply): binding every
    # outcome would copy 100,000+ receipts per bin night into a queue that drops them.
    QueueSpec("inbound.events", "inbound", _TENANCY + ("notification.sent",),
              "tenant replica and conversation context"),
    QueueSpec("inbound.webhooks", "inbound",
              ("service_request.created", "service_request.updated", "inbound.message.received",
               "appointment.confirmed", "appointment.cancelled",
               "appointment.rearrange_requested"),
              "signed webhooks to each tenant's own system (retried through delay queues)"),
    QueueSpec("scheduler.events", "scheduler",
              _TENANCY + _NOTIFICATION_OUTCOMES + ("subscriber.opted_out", "subscriber.opted_in",
                                                  "subscriber.language_changed",
                                                  "inbound.message.received",
                                                  "appointment.confirmed", "appointment.cancelled",
                                                  "appointment.rearrange_requested"),
              "tenant replica, opt-outs, campaign stats and appointment replies"),
)


def queue_spec(name: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def queues_for(service: str) -> tuple[QueueSpec, ...]:
    return tuple(q for q in QUEUES if q.service == service)


def delay_queue_name(seconds: int) -> str:
    return f"hysbys.delay.{seconds}s"


def delay_tier(seconds: float) -> int:
    for tier in DELAY_TIERS:
        if seconds <= tier:
            return tier
    return DELAY_TIERS[-1]


def events_exchange() -> Exchange:
    return Exchange(EVENTS_EXCHANGE, type="topic", durable=True)


def kombu_queues(spec: QueueSpec, quorum: bool = False, native_dlx: bool = True) -> list[Queue]:
    """The queue and its DLQ as kombu declarations.

    ``native_dlx`` adds RabbitMQ's dead-letter arguments (a message the broker
    rejects goes to the DLQ); the in-memory transport has no use for them.
    """
    exchange = events_exchange()
    args: dict = {}
    dlq_args: dict = {}
    if native_dlx:
        args = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": spec.dlq}
        if quorum:
            args["x-queue-type"] = "quorum"
            dlq_args["x-queue-type"] = "quorum"
    from kombu import binding

    main = Queue(spec.name, exchange=exchange, durable=True, queue_arguments=args,
                 bindings=[binding(exchange, routing_key=t) for t in spec.event_types])
    dlq = Queue(spec.dlq, exchange=Exchange(""), routing_key=spec.dlq, durable=True,
                queue_arguments=dlq_args, no_declare=False)
    return [main, dlq]


# A retry waits in a delay queue until its TTL dead-letters it back to its queue.  RabbitMQ's
# default dead-lettering is at-most-once (a message whose target queue is unavailable at that
# moment is dropped); quorum queues can dead-letter at least once, keeping the message until
# the target has confirmed it, which needs ``overflow: reject-publish`` (a full queue refuses
# new retries, the publisher's confirm fails and the original is not acked).  The same
# settings are a policy in deploy/rabbitmq/definitions.json, for delay queues an earlier
# release declared without them (a queue's arguments cannot change once declared).
AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def kombu_delay_queues(quorum: bool = False) -> list[Queue]:
    exchange = Exchange(DELAY_EXCHANGE, type="headers", durable=True)
    out = []
    for tier in DELAY_TIERS:
        args = {"x-message-ttl": tier * 1000, "x-dead-letter-exchange": ""}
        if quorum:
            args["x-queue-type"] = "quorum"
            args.update(AT_LEAST_ONCE)
        out.append(Queue(delay_queue_name(tier), exchange=exchange, durable=True,
                         queue_arguments=args,
                         binding_arguments={"x-match": "all", "hysbys-delay": str(tier)}))
    return out
