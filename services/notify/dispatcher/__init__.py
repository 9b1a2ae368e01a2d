"""The dispatcher: hands created notifications to providers, fairly and exactly once.

One job per module:

``claim``
    fair claiming across tenants (an equal share each, urgent first) and admission:
    quiet hours released, open circuits, busy lanes and empty throttles wait as
    ``created``; claimed rows become ``sending`` and the claim commits before any
    provider is called.
``lanes``
    a thread per remote provider, so a slow or hanging one holds up only its own rows.
``handoff``
    the ``handoff_at`` stamp (a row not stamped is not sent), then the providers in
    order, failing over on a retryable error.
``record``
    the outcomes with their events, in one transaction; retry with backoff (the
    database is the delay queue) or give up; outcomes held through a database outage.
``sweeper``
    stale ``sending`` rows: re-queued if never stamped, else failed "outcome unknown".
``safeguards``
    the retry policy, circuit breakers, throttle and timings, injectable for tests.
``loop``
    the :class:`Dispatcher` that runs them in turn.

Every status change carries the notification's correlation id (stored when it was
accepted), and so does every log line written while it is sent and recorded.
"""
from services.notify.dispatcher.claim import TENANTS_WITH_WORK, Claim, ProviderChooser
from services.notify.dispatcher.handoff import Outcome
from services.notify.dispatcher.lanes import Lane, Lanes
from services.notify.dispatcher.loop import Dispatcher
from services.notify.dispatcher.record import KNOWN_AT_ONCE, suppress
from services.notify.dispatcher.safeguards import RetryPolicy, Safeguards

__all__ = ["KNOWN_AT_ONCE", "TENANTS_WITH_WORK", "Claim", "Dispatcher", "Lane", "Lanes", "Outcome",
           "ProviderChooser", "RetryPolicy", "Safeguards", "suppress"]
