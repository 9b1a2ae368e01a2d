"""A handled batch is acked with one ``multiple`` ack only when that cannot ack a message
still waiting in another queue's batch on the same channel."""
from __future__ import annotations

from shared.bus import Bus, Worker


class FakeMessage:
    """What the worker uses of a kombu message: its delivery tag and ack."""

    def __init__(self, tag: int, acks: list):
        self.delivery_tag = tag
        self._acks = acks

    def ack(self, multiple: bool = False) -> None:
        self._acks.append((self.delivery_tag, multiple))


def worker(url: str = "amqp://guest:guest@127.0.0.1:5672//") -> Worker:
    # the connection is lazy: nothing here talks to a broker
    return Worker(Bus(url), {})


def test_a_batch_with_nothing_else_waiting_is_acked_once_with_multiple():
    acks: list = []
    w = worker()
    w._ack_batch([FakeMessage(t, acks) for t in (3, 1, 2)])
    assert acks == [(3, True)]


def test_a_batch_is_acked_one_by_one_when_another_queue_holds_an_older_message():
    acks: list = []
    w = worker()
    w._buffers["other.queue"] = [(object(), FakeMessage(2, acks))]   # not handled yet
    w._ack_batch([FakeMessage(t, acks) for t in (1, 3, 4)])
    assert sorted(acks) == [(1, False), (3, False), (4, False)]     # tag 2 left alone


def test_newer_messages_waiting_elsewhere_do_not_prevent_the_single_ack():
    acks: list = []
    w = worker()
    w._buffers["other.queue"] = [(object(), FakeMessage(9, acks))]
    w._ack_batch([FakeMessage(t, acks) for t in (5, 6, 7)])
    assert acks == [(7, True)]


def test_the_in_memory_transport_is_acked_one_by_one():
    acks: list = []
    w = worker("memory://")
    w._ack_batch([FakeMessage(t, acks) for t in (1, 2)])
    assert acks == [(1, False), (2, False)]
