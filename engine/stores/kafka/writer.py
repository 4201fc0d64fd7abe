"""The elected writer: the one instance that writes events to the topic.

While it holds the lease (``kafka_lease``), the writer takes appends from its own
process (a local queue) and from the others (the requests topic), checks every
aggregate version against the cache, and writes each batch of accepted appends in one
Kafka transaction: the events, the replies to forwarded appends, and the
requests-topic offsets; once committed, it puts its events in the cache itself, so
the cache always holds the whole log when the next batch is checked.

A new writer first calls ``init_transactions`` with the role's transactional id
(fencing any previous writer, and aborting its open transaction), then catches up
with the log's end read after that, and only then checks versions.
Every transactional call runs under a deadline, because a fenced producer can hang.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from eventsourcing.persistence import IntegrityError, OperationalError
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from engine.stores.kafka.cache import EventCache, Key
from engine.stores.kafka.clients import (
    FetchWatch,
    Messenger,
    call_with_deadline,
    discard,
    new_consumer,
    new_producer,
)
from engine.stores.kafka.codec import (
    LEASE_HEADERS,
    REPLY_HEADERS,
    AppendRequest,
    EventRow,
    LeaseRecord,
    Reply,
    event_record,
)
from engine.stores.kafka.errors import CacheDivergedError, StoreUnavailableError
from engine.stores.kafka.lease import LeaseView
from engine.stores.kafka.settings import KafkaSettings
from engine.stores.kafka.tailer import Tailer, probe_log_end

log = logging.getLogger("engine.stores.kafka")

State = Literal["follower", "activating", "active", "diverged"]
IDLE_WAIT = 0.01
FOLLOW_WAIT = 0.02  # how often a follower checks whether the role is free
RETRY_WAIT = 0.5


class NotWriterError(Exception):
    """This instance is not (or no longer) the writer: forward the append instead."""


@dataclass
class LocalAppend:
    """An append from this process; ``future`` gets the event offsets."""

    rows: list[EventRow]
    deadline: float  # monotonic time after which the caller has given up
    future: Future[list[int]]
    free: Sequence[Key] = ()  # keys that must not be taken (the append's conditions)


class Writer(threading.Thread):
    """Claims the writer role when it is free, and decides appends while holding it.

    ``submit`` accepts local appends only while this instance holds the role
    (else ``NotWriterError``); each future resolves, before the append's deadline,
    to the event offsets, or to ``IntegrityError`` (a version is taken) or
    ``StoreUnavailableError`` (not committed; the broker is unreachable).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        cache: EventCache,
        lease: LeaseView,
        tailer: Tailer,
        messenger: Messenger,
    ) -> None:
        super().__init__(name=f"kafka-writer-{settings.topic}", daemon=True)
        self.settings = settings
        self.me = settings.writer_id
        self.cache = cache
        self.lease = lease
        self.tailer = tailer
        self.messenger = messenger
        self.state: State = "follower"
        self.epoch = 0
        self.diverged: CacheDivergedError | None = None
        self.last_error = ""
        self._queue: deque[LocalAppend] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._producer: Any = None
        self._requests: Any = None
        self._requests_watch: FetchWatch | None = None
        self._requests_tp = TopicPartition(settings.requests_topic, 0)
        self._tick = time.monotonic()  # when the loop last went round

    # -- the interface for the recorder ----------------------------------------------

    @property
    def is_holder(self) -> bool:
        return self.state in ("activating", "active")

    def submit(
        self, rows: list[EventRow], deadline: float, free: Sequence[Key] = ()
    ) -> Future[list[int]]:
        with self._lock:
            if not self.is_holder:
                raise NotWriterError
            item = LocalAppend(rows, deadline, Future(), free)
            self._queue.append(item)
        self._wake.set()
        return item.future

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    # -- the loop ------------------------------------------------------------------

    def run(self) -> None:
        threading.Thread(
            target=self._beat, name=f"kafka-heartbeat-{self.settings.topic}", daemon=True
        ).start()
        while not self._halt.is_set():
            self._tick = time.monotonic()
            try:
                if self.tailer.diverged is not None and self.diverged is None:
                    self._become_diverged(self.tailer.diverged)
                if self.state == "follower":
                    self._follow()
                elif self.state == "activating":
                    self._activate()
                elif self.state == "active":
                    self._serve()
                else:
                    self._fail_queue(lambda: self.diverged or StoreUnavailableError("diverged"))
                    self._wake.wait(0.1)
                    self._wake.clear()
            except Exception as e:  # keep the role's loop alive; report and retry
                log.exception("writer of topic %r: unexpected error", self.settings.topic)
                self.last_error = str(e)
                self._halt.wait(RETRY_WAIT)
        self._resign()

    def _follow(self) -> None:
        if not self.tailer.caught_up.is_set() or not self.lease.claimable(
            self.settings.lease_timeout
        ):
            self._wake.wait(FOLLOW_WAIT)
            self._wake.clear()
            return
        epoch = self.lease.epoch + 1
        record = LeaseRecord("claim", self.me, epoch)
        try:
            offset = self.messenger.send(
                self.settings.leases_topic,
                key=self.me.encode(),
                value=record.encode(),
                timeout=self.settings.request_timeout,
                headers=LEASE_HEADERS,
            )
        except KafkaError as e:
            self.last_error = f"claiming the writer role: {e}"
            self._halt.wait(RETRY_WAIT)
            return
        self.lease.wait_for_position(offset + 1, self.settings.request_timeout * 2)
        if self.lease.holds(self.me, epoch):
            log.info("%s is the writer of topic %r (epoch %d)", self.me, self.settings.topic, epoch)
            self.epoch = epoch
            with self._lock:
                self.state = "activating"

    def _activate(self) -> None:
        if not self.lease.holds(self.me, self.epoch):
            self._step_down()
            return
        self._release_clients()
        s = self.settings
        try:
            producer = new_producer(
                s,
                "writer",
                transactional_id=s.transactional_id,
                batch_size=256 * 1024,
                max_block_ms=int(s.commit_timeout * 1000),
                delivery_timeout_ms=int((s.request_timeout + s.commit_timeout) * 1000),
            )
            self._producer = producer
            # Fence any previous writer (and abort its open transaction) first...
            call_with_deadline(producer.init_transactions, s.commit_timeout + 1, "init")
            # ...then catch up with the whole log as it stands after that.
            end = probe_log_end(s, self.cache, s.request_timeout)
            if not self._catch_up(end):
                raise StoreUnavailableError(f"the cache did not reach offset {end} in time")
            self._open_requests()
        except CacheDivergedError as e:
            self._become_diverged(e)
            return
        except (KafkaError, StoreUnavailableError, TimeoutError, OSError) as e:
            self.last_error = f"becoming the writer: {e}"
            log.warning("writer of topic %r: %s", s.topic, self.last_error)
            self._release_clients()
            self._expire_queue()
            self._halt.wait(RETRY_WAIT)
            return
        with self._lock:
            self.state = "active"

    def _serve(self) -> None:
        if not self.lease.holds(self.me, self.epoch):
            self._step_down()
            return
        self._wake.clear()
        local = self._drain()
        try:
            polled = self._requests.poll(timeout_ms=0, max_records=500)
        except KafkaError as e:
            log.warning("writer of topic %r: reading requests: %s", self.settings.topic, e)
            polled = {}
        if self._requests_watch is not None and (
            self._requests_watch.silent_for() > self.settings.request_timeout
        ):
            # No fetch answered for that long: the consumer is wedged or cut off. A
            # new one resumes from the offset committed with the last transaction.
            log.warning("writer of topic %r: requests consumer replaced", self.settings.topic)
            self._reopen_requests()
        remote = [(record.offset, record.value) for record in polled.get(self._requests_tp, ())]
        if not local and not remote:
            self._wake.wait(IDLE_WAIT)
            return
        self._process(local, remote)

    # -- deciding and writing a batch -------------------------------------------------

    def _process(self, local: list[LocalAppend], remote: list[tuple[int, bytes]]) -> None:
        now, wall = time.monotonic(), time.time()
        budget = self.settings.commit_timeout
        pending: set[Key] = set()
        accepted: list[LocalAppend] = []
        for item in local:
            if item.deadline - now < budget:
                item.future.set_exception(
                    StoreUnavailableError(
                        "the append could not be started before its deadline"
                        + (f" ({self.last_error})" if self.last_error else "")
                    )
                )
                continue
            conflict = self._conflict(item.rows, pending, item.free)
            if conflict:
                item.future.set_exception(IntegrityError(conflict))
            else:
                accepted.append(item)
        forwarded: list[AppendRequest] = []
        replies: list[tuple[str, Reply]] = []
        for _, value in remote:
            try:
                request = AppendRequest.decode(value)
            except ValueError as e:
                log.error("requests topic: skipped a bad request: %s", e)
                continue
            if request.expires_at - wall < budget:
                continue  # its caller has given up or will before we could commit
            conflict = self._conflict(request.events, pending, request.free)
            if conflict:
                replies.append(
                    (
                        request.reply_to,
                        Reply(
                            "conflict", self.me, self.epoch, request.request_id, message=conflict
                        ),
                    )
                )
            else:
                forwarded.append(request)
        if not accepted and not forwarded and not remote:
            return
        try:
            offsets = self._transact(
                [item.rows for item in accepted] + [r.events for r in forwarded],
                forwarded,
                replies,
                remote[-1][0] + 1 if remote else None,
                deadline=time.monotonic() + budget,
            )
        except (KafkaError, TimeoutError, OSError) as e:
            self.last_error = f"writing to Kafka: {e or type(e).__name__}"
            log.warning("writer of topic %r: %s", self.settings.topic, self.last_error)
            for item in accepted:
                item.future.set_exception(
                    StoreUnavailableError(f"the append was not committed: {self.last_error}")
                )
            with self._lock:
                self.state = "activating"
            return
        self.last_error = ""
        self._write_through(
            [item.rows for item in accepted] + [r.events for r in forwarded], offsets
        )
        for item, item_offsets in zip(accepted, offsets, strict=False):
            item.future.set_result(item_offsets)

    def _write_through(self, appends: list[list[EventRow]], offsets: list[list[int]]) -> None:
        """Put committed events in the cache at once (the tailer skips them later).

        Safe because this writer is the topic's only producer and its catch-up cached
        every event before its first transaction: its own events come next, in order.
        If the cache cannot take them, catch up from the topic again."""
        committed = [
            (offset, row)
            for rows, row_offsets in zip(appends, offsets, strict=True)
            for row, offset in zip(rows, row_offsets, strict=True)
        ]
        if not committed:
            return
        try:
            self.cache.ingest(committed, committed[-1][0] + 1)
        except OperationalError as e:
            log.warning(
                "writer of topic %r: cache write-through failed: %s", self.settings.topic, e
            )
            with self._lock:
                self.state = "activating"

    def _conflict(
        self, rows: Sequence[EventRow], pending: set[Key], free: Sequence[Key] = ()
    ) -> str:
        """Why the append cannot be recorded after the cache and ``pending`` (the keys
        of the batch's appends accepted so far), or "" (then its keys join ``pending``).
        ``free``: keys the append does not write but that must still be free."""
        keys = [(r.originator_id, r.originator_version) for r in rows]
        if len(set(keys)) != len(keys):
            return "the append repeats an aggregate version"
        taken = [k for k in keys if k in pending]
        if not taken:
            taken = sorted(self.cache.existing(keys))
        if taken:
            oid, version = taken[0]
            return f"aggregate {oid} version {version} is already recorded"
        moved = [k for k in free if k in pending] or sorted(self.cache.existing(free))
        if moved:
            oid, version = moved[0]
            return f"aggregate {oid} moved on from version {version - 1} (a condition)"
        pending.update(keys)
        return ""

    def _transact(
        self,
        appends: list[list[EventRow]],
        forwarded: list[AppendRequest],
        replies: list[tuple[str, Reply]],
        requests_offset: int | None,
        deadline: float,
    ) -> list[list[int]]:
        """One transaction: the events of ``appends``, the replies, the requests
        offset. Returns the event offsets of each append."""
        producer, s = self._producer, self.settings
        producer.begin_transaction()
        sent = [
            [
                producer.send(s.topic, key=k, value=v, headers=h, partition=0)
                for k, v, h in map(event_record, rows)
            ]
            for rows in appends
        ]
        if forwarded:
            # The replies carry the offsets: learn them before committing.
            producer.flush(timeout=max(0.0, deadline - time.monotonic()))
        n_local = len(appends) - len(forwarded)
        offsets = [[f.get(timeout=0).offset for f in futures] for futures in sent[n_local:]]
        for request, request_offsets in zip(forwarded, offsets, strict=True):
            replies.append(
                (
                    request.reply_to,
                    Reply("ok", self.me, self.epoch, request.request_id, offsets=request_offsets),
                )
            )
        for reply_to, reply in replies:
            producer.send(
                s.replies_topic,
                key=reply_to.encode(),
                value=reply.encode(),
                headers=REPLY_HEADERS,
                partition=0,
            )
        if requests_offset is not None:
            position = {self._requests_tp: OffsetAndMetadata(requests_offset, "", -1)}
            call_with_deadline(
                lambda: producer.send_offsets_to_transaction(position, s.writer_group_id),
                deadline - time.monotonic(),
                "send_offsets",
            )
        # kafka-python sends the commit only once every record is acknowledged, so the
        # local appends' offsets are known when it returns.
        call_with_deadline(producer.commit_transaction, deadline - time.monotonic(), "commit")
        local = [[f.get(timeout=1).offset for f in futures] for futures in sent[:n_local]]
        return local + offsets

    # -- helpers ---------------------------------------------------------------------

    def _drain(self) -> list[LocalAppend]:
        items: list[LocalAppend] = []
        count = 0
        with self._lock:
            while self._queue and count < self.settings.max_batch_events:
                item = self._queue.popleft()
                items.append(item)
                count += len(item.rows)
        return items

    def _beat(self) -> None:
        """Say this instance is alive while it holds the role (activating included,
        so that a long catch-up is not taken for a death), from a thread of its own,
        so that a slow commit does not silence it. Every call of the loop is bounded,
        so a loop that has not gone round for longer than those bounds is stuck: its
        silence then lets another instance take over."""
        s = self.settings
        stuck_after = s.commit_timeout + 2 * s.request_timeout + 1
        while not self._halt.wait(s.heartbeat_interval):
            if not self.is_holder or time.monotonic() - self._tick > stuck_after:
                continue
            beat = Reply("heartbeat", self.me, self.epoch)
            try:
                self.messenger.send_async(
                    s.replies_topic,
                    key=self.me.encode(),
                    value=beat.encode(),
                    headers=REPLY_HEADERS,
                )
            except KafkaError as e:
                log.debug("heartbeat not sent: %s", e)

    def _catch_up(self, end: int) -> bool:
        """Wait until the cache reaches ``end`` (a new writer's catch-up), going round
        as the loop does, so that the heartbeats go on meanwhile."""
        deadline = time.monotonic() + self.settings.startup_timeout
        while not self.cache.wait_for_offset(end, 0.1):
            self._tick = time.monotonic()
            if self._tick > deadline or self._halt.is_set():
                return False
        return True

    def _expire_queue(self) -> None:
        """Fail local appends that can no longer be started before their deadline."""
        now = time.monotonic()
        with self._lock:
            keep = deque(i for i in self._queue if i.deadline - now >= self.settings.commit_timeout)
            expired = [i for i in self._queue if i not in keep]
            self._queue = keep
        for item in expired:
            item.future.set_exception(
                StoreUnavailableError(f"the broker is unreachable: {self.last_error}")
            )

    def _fail_queue(self, error: Callable[[], Exception]) -> None:
        with self._lock:
            items, self._queue = list(self._queue), deque()
        for item in items:
            item.future.set_exception(error())

    def _step_down(self) -> None:
        log.info("%s is no longer the writer of topic %r", self.me, self.settings.topic)
        with self._lock:
            self.state = "follower"
        self._release_clients()
        self._fail_queue(NotWriterError)

    def _become_diverged(self, error: CacheDivergedError) -> None:
        error = self.cache.diverge(error)  # the cache keeps the first cause found
        log.error("writer of topic %r: %s", self.settings.topic, error)
        self.diverged = error
        with self._lock:
            self.state = "diverged"
        self._release_clients()
        self._fail_queue(lambda: error)

    def _open_requests(self) -> None:
        s = self.settings
        requests = new_consumer(
            s,
            "writer",
            group_id=s.writer_group_id,
            auto_offset_reset="earliest",
            bootstrap_timeout_ms=int(s.request_timeout * 1000),
        )
        requests.assign([self._requests_tp])
        self._requests, self._requests_watch = requests, FetchWatch(requests)

    def _reopen_requests(self) -> None:
        requests, self._requests, self._requests_watch = self._requests, None, None
        discard(requests)
        try:
            self._open_requests()
        except KafkaError as e:
            self.last_error = f"reading requests: {e}"
            with self._lock:
                self.state = "activating"  # connect everything again

    def _release_clients(self) -> None:
        producer, self._producer = self._producer, None
        requests, self._requests, self._requests_watch = self._requests, None, None
        discard(producer)
        discard(requests)

    def _resign(self) -> None:
        was_holder = self.state == "active"
        with self._lock:
            self.state = "follower"
        self._fail_queue(lambda: StoreUnavailableError("the recorder is closed"))
        self._release_clients()
        if was_holder:
            record = LeaseRecord("resign", self.me, self.epoch)
            try:
                self.messenger.send(
                    self.settings.leases_topic,
                    key=self.me.encode(),
                    value=record.encode(),
                    timeout=self.settings.request_timeout,
                    headers=LEASE_HEADERS,
                )
            except KafkaError as e:
                log.warning("could not resign the writer role of %r: %s", self.settings.topic, e)
