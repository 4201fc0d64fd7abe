"""Bad input over real HTTP: always a 4xx problem+json, never a 5xx, never a partial write.

Covers oversized and deeply nested bodies, unicode edge cases, header injection and
odd headers, wrong content types, malformed JSON, numbers out of range, and path
parameters that are not UUIDs. Every refused command must leave GET /events as it was.

Requests that are not valid HTTP/1.1 (CR or LF inside a header value, a NUL, two
Content-Lengths) never reach the application: uvicorn's parser answers them with a plain
``400 Invalid HTTP request received.``, so for those only "4xx and nothing recorded" is
checked.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.proc import Seed, Server, auth, seed, ticket_body

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MAX_BODY = 65536  # TICKETING_MAX_BODY_BYTES default
INT64_MAX = 2**63 - 1
NIL = "00000000-0000-0000-0000-000000000000"
# What uvicorn answers, before the application sees anything, to invalid HTTP/1.1.
UVICORN_INVALID = b"Invalid HTTP request received."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("bad-input") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def people(server: Server) -> Seed:
    return seed(server)


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def ticket(admin: httpx.Client, people: Seed) -> str:
    r = admin.post("/tickets", json=ticket_body(people.queue))
    assert r.status_code == 201, r.text
    ticket_id: str = r.json()["aggregate_id"]
    return ticket_id


def count_events(server: Server) -> int:
    return len(server.client_events())


@pytest.fixture
def unchanged(server: Server, people: Seed, ticket: str) -> Iterator[None]:
    """The test's requests are all refused: the log must be exactly as before (but for
    what the SLA clock records by itself meanwhile)."""
    before = server.client_events()
    yield
    after = server.client_events()
    assert after == before, f"a refused request recorded {len(after) - len(before)} events"


def assert_problem(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A 4xx RFC 9457 problem (one of ``statuses`` when given)."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if statuses:
        assert r.status_code in statuses, (r.status_code, r.text[:500])
    assert r.headers["content-type"].split(";")[0] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == r.status_code, body
    assert isinstance(body["title"], str) and isinstance(body["detail"], str), body
    return body


def post_raw(client: httpx.Client, path: str, content: bytes, **headers: str) -> httpx.Response:
    return client.post(
        path, content=content, headers={"content-type": "application/json", **headers}
    )


def raw_http(server: Server, request: bytes, timeout: float = 5.0) -> httpx.Response:
    """Send bytes as they are (httpx refuses to send malformed headers)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
    return httpx.Response(int(status_line.split(" ", 2)[1]), headers=headers, content=body)


def assert_refused_raw(r: httpx.Response, *statuses: int) -> None:
    """4xx: uvicorn's parser's plain 400 for invalid HTTP, else the app's problem."""
    if r.headers.get("content-type", "").startswith("text/plain"):
        assert r.status_code == 400 and r.content == UVICORN_INVALID, (r.status_code, r.text)
    else:
        assert_problem(r, *statuses)


def raw_post(server: Server, header_lines: bytes, body: bytes) -> bytes:
    return (
        b"POST /tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + f"Authorization: Bearer {server.admin_key}\r\n".encode()
        + header_lines
        + b"\r\n"
        + body
    )


def open_body(**fields: Any) -> dict[str, Any]:
    return ticket_body(None, **fields)


# --- body size and depth -----------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
class TestOversizedAndDeep:
    def test_body_over_the_limit_is_413(self, admin: httpx.Client) -> None:
        body = json.dumps(open_body(description="x" * MAX_BODY)).encode()
        assert_problem(post_raw(admin, "/tickets", body), 413)

    def test_body_at_the_limit_is_not_413(self, admin: httpx.Client) -> None:
        body = json.dumps(open_body(description="")).encode()
        body = body[:-1] + b" " * (MAX_BODY - len(body)) + b"}"
        assert len(body) == MAX_BODY
        assert_problem(post_raw(admin, "/tickets", body), 422)  # empty description

    def test_chunked_body_over_the_limit_is_413(self, admin: httpx.Client) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"title": "'
            for _ in range(20):
                yield b"a" * 8192
            yield b'"}'

        r = admin.post("/tickets", content=chunks(), headers={"content-type": "application/json"})
        assert_problem(r, 413)

    def test_one_megabyte_is_413(self, admin: httpx.Client, ticket: str) -> None:
        body = b'{"body": "' + b"a" * 1_000_000 + b'"}'
        assert_problem(post_raw(admin, f"/tickets/{ticket}/comments", body), 413)

    @pytest.mark.parametrize("depth", [33, 100, 30_000])
    def test_deep_arrays_are_refused(self, admin: httpx.Client, depth: int) -> None:
        body = b"[" * depth + b"]" * depth
        assert_problem(post_raw(admin, "/tickets", body), 413, 422)

    def test_deep_objects_in_a_field_are_refused(self, admin: httpx.Client) -> None:
        nested = b'{"a": ' * 5000 + b'"x"' + b"}" * 5000
        body = json.dumps(open_body(description="PLACEHOLDER")).encode()
        body = body.replace(b'"PLACEHOLDER"', nested)
        assert len(body) < MAX_BODY
        assert_problem(post_raw(admin, "/tickets", body), 422)

    def test_deep_json_in_a_comment_is_refused(self, admin: httpx.Client, ticket: str) -> None:
        body = b'{"body": ' + b"[" * 1000 + b"]" * 1000 + b"}"
        assert_problem(post_raw(admin, f"/tickets/{ticket}/comments", body), 422)


def test_brackets_inside_strings_are_not_nesting(
    server: Server, admin: httpx.Client, ticket: str
) -> None:
    before = count_events(server)
    text = '\\"' + "[{" * 60 + ' "quoted" \\\\'
    r = admin.post(f"/tickets/{ticket}/comments", json={"body": text})
    assert r.status_code == 200, r.text
    assert count_events(server) == before + 1


def test_declared_length_over_the_limit_is_413_at_once(server: Server) -> None:
    head = raw_post(server, b"", b"")
    head = head.replace(b"Content-Length: 0", f"Content-Length: {10 * MAX_BODY}".encode())
    assert_problem(raw_http(server, head + b'{"title"', timeout=3.0), 413)


# --- unicode ---------------------------------------------------------------------

ROUND_TRIP = {
    "emoji": "Printer 🖨️ on fire 🔥👩🏽‍💻 (ZWJ family 👨‍👩‍👧‍👦)",
    "combining": "Cafe\u0301 Zo\u0308e n\u0303 " + "a" + "\u0301" * 50,
    "rtl": "\u202eevil.exe\u202c \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "zero width": "a\u200bb\u200cc\u200dd\ufeffe",
    "astral": "\U0001d54f\U0001d565 \U00010348 \U0010fffd",
    "nul inside": "before\x00after",
    "controls": "bell\x07 escape\x1b[31m red \x7f",
    "max length in emoji": "😀" * 200,
}


@pytest.mark.parametrize("text", ROUND_TRIP.values(), ids=list(ROUND_TRIP))
def test_unicode_is_recorded_exactly_or_refused(
    server: Server, admin: httpx.Client, text: str
) -> None:
    before = count_events(server)
    r = admin.post("/tickets", json=open_body(title=text, description=text))
    if r.status_code >= 400:
        assert_problem(r, 422)
        assert count_events(server) == before
        return
    assert r.status_code == 201, r.text
    ticket_id = r.json()["aggregate_id"]
    got = admin.get(f"/tickets/{ticket_id}").json()
    # Both are stripped of surrounding whitespace (the API's string type); the rest is kept.
    assert got["title"] == text.strip()
    assert got["description"] == text.strip()
    assert count_events(server) == before + 2  # TicketOpened, TicketTriaged


@pytest.mark.usefixtures("unchanged")
class TestUnicodeRefused:
    @pytest.mark.parametrize(
        "escaped",
        [rb"\ud800", rb"\udfff", rb"\udc00\ud800", rb"a\ud83d", rb"\ud83dz"],
    )
    def test_lone_surrogate_escapes_are_422(self, admin: httpx.Client, escaped: bytes) -> None:
        body = json.dumps(open_body(title="PLACEHOLDER")).encode()
        body = body.replace(b"PLACEHOLDER", escaped)
        body_ = assert_problem(post_raw(admin, "/tickets", body), 422)
        assert "title" in body_["detail"]

    @pytest.mark.parametrize(
        "raw",
        [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"caf\xe9"],
        ids=["ff-fe", "overlong-slash", "encoded-surrogate", "beyond-u10ffff", "latin-1"],
    )
    def test_invalid_utf8_is_4xx(self, admin: httpx.Client, raw: bytes) -> None:
        body = json.dumps(open_body(title="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", raw)
        assert_problem(post_raw(admin, "/tickets", body), 400, 422)

    @pytest.mark.parametrize(
        ("field", "size"),
        [("title", 201), ("description", 10_001), ("category", 101), ("requester_id", 101)],
    )
    def test_overlong_strings_are_422(self, admin: httpx.Client, field: str, size: int) -> None:
        body = assert_problem(admin.post("/tickets", json=open_body(**{field: "é" * size})), 422)
        assert field in json.dumps(body["errors"])

    @pytest.mark.parametrize("blank", ["", "   ", "\t\n", "\u3000\u2003"])
    def test_blank_titles_are_422(self, admin: httpx.Client, blank: str) -> None:
        assert_problem(admin.post("/tickets", json=open_body(title=blank)), 422)

    @pytest.mark.parametrize("name", ["🔥", "a/b", "x\x00y", "a\nb", "../etc"])
    def test_queue_names_outside_the_pattern_are_422(self, admin: httpx.Client, name: str) -> None:
        assert_problem(admin.post("/queues", json={"name": name}), 422)


# --- headers ---------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
class TestHeaders:
    @pytest.mark.parametrize(
        "value",
        [
            "",
            "Bearer",
            "Basic YWRtaW46YWRtaW4=",
            "Token abc",
            "Bearer wrong-key",
            "Bearer " + "k" * 100_000,
            "bearer\twrong",
        ],
        ids=lambda v: repr(v[:24]),
    )
    def test_bad_authorization_is_401(self, server: Server, value: str) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            r = c.post("/tickets", json=open_body(), headers={"Authorization": value})
        assert_problem(r, 401)
        assert r.headers.get("www-authenticate") == "Bearer"

    @pytest.mark.parametrize(
        "value",
        [
            b"Bearer ",
            b"Bearer  ",
            "Bearer é".encode("latin-1"),
            "Bearer 🔑".encode(),
            b"Bearer\x01",
        ],
        ids=["trailing-space", "two-spaces", "latin-1", "utf-8", "control"],
    )
    def test_odd_authorization_bytes_are_401(self, server: Server, value: bytes) -> None:
        request = raw_post(server, b"", json.dumps(open_body()).encode())
        request = request.replace(f"Bearer {server.admin_key}".encode(), value)
        assert_refused_raw(raw_http(server, request), 401)

    def test_missing_authorization_is_401(self, server: Server) -> None:
        r = httpx.post(f"{server.url}/tickets", json=open_body())
        assert_problem(r, 401)

    @pytest.mark.parametrize(
        "key",
        [b"", b"   ", b"a\tb", b"\x1b[31m", b"k" * 201, b"trailing\x0b", b"\x85"],
        ids=["empty", "blank", "tab", "escape", "201-chars", "vertical-tab", "NEL-only"],
    )
    def test_bad_idempotency_keys_are_refused(self, server: Server, key: bytes) -> None:
        line = b"Idempotency-Key: " + key + b"\r\n"
        r = raw_http(server, raw_post(server, line, json.dumps(open_body()).encode()))
        assert_refused_raw(r, 422)

    @pytest.mark.parametrize(
        "if_match",
        ['"999.999"', "garbage", "x" * 101, '"1.0", "2.0"'],
        ids=["stale", "garbage", "too-long", "list"],
    )
    def test_bad_if_match_is_412_or_422(
        self, admin: httpx.Client, ticket: str, if_match: str
    ) -> None:
        r = admin.post(
            f"/tickets/{ticket}/comments", json={"body": "hi"}, headers={"If-Match": if_match}
        )
        assert_problem(r, 412, 422)

    @pytest.mark.parametrize(
        "line",
        [
            b"Idempotency-Key: a\rb\r\n",
            b"Idempotency-Key: a\nX-Injected: 1\r\n",
            b"Idempotency-Key: a\x00b\r\n",
            b"Idempotency-Key: a\x7fb\r\n",
            b"Idempotency-Key: a\r\n folded\r\n",
            b"X-Bad Name: 1\r\n",
            b"Content-Length: 3\r\n",
            b"Transfer-Encoding: chunked\r\n",
        ],
        ids=["CR", "LF", "NUL", "DEL", "obs-fold", "space-in-name", "two-lengths", "CL-and-TE"],
    )
    def test_malformed_header_lines_are_4xx(self, server: Server, line: bytes) -> None:
        r = raw_http(server, raw_post(server, line, json.dumps(open_body()).encode()))
        assert_refused_raw(r, 400, 422)

    def test_header_injection_cannot_smuggle_a_second_request(self, server: Server) -> None:
        smuggled = raw_post(server, b"", b"").replace(b"\r\n\r\n", b"\r\n") + b"\r\n"
        line = b"Idempotency-Key: a\r\n\r\n" + smuggled
        r = raw_http(server, raw_post(server, line, json.dumps(open_body()).encode()))
        assert_refused_raw(r, 422)  # the smuggled text is the body: not JSON

    def test_huge_header_is_never_5xx(self, admin: httpx.Client) -> None:
        r = admin.post(
            "/tickets",
            json=open_body(),
            headers={"X-Padding": "p" * 60_000} | {"Idempotency-Key": "k" * 300},
        )
        assert_problem(r, 422, 431)

    def test_many_headers_are_never_5xx(self, admin: httpx.Client) -> None:
        headers = {f"X-H{i}": "v" for i in range(500)} | {"Idempotency-Key": "k" * 201}
        assert_problem(admin.post("/tickets", json=open_body(), headers=headers), 422, 431)


def test_a_latin_1_idempotency_key_is_text_and_replays(server: Server) -> None:
    # Header bytes beyond ASCII are latin-1 text to the server (obs-text): a valid key.
    key = b"cl\xe9-" + uuid.uuid4().hex.encode()
    request = raw_post(
        server, b"Idempotency-Key: " + key + b"\r\n", json.dumps(open_body()).encode()
    )
    first = raw_http(server, request)
    assert first.status_code == 201, first.text
    before = count_events(server)
    again = raw_http(server, request)
    assert again.status_code == 201 and again.json()["replayed"] is True
    assert again.json()["aggregate_id"] == first.json()["aggregate_id"]
    assert count_events(server) == before


def test_an_idempotency_key_reused_for_another_body_is_422(
    server: Server, admin: httpx.Client
) -> None:
    key = f"reuse-{uuid.uuid4()}"
    first = admin.post("/tickets", json=open_body(), headers={"Idempotency-Key": key})
    assert first.status_code == 201
    before = count_events(server)
    r = admin.post("/tickets", json=open_body(title="other"), headers={"Idempotency-Key": key})
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert count_events(server) == before
    # The first command stays answered from its record.
    again = admin.post("/tickets", json=open_body(), headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.json() | {"position": 0} == first.json() | {"position": 0, "replayed": True}
    assert count_events(server) == before


# --- content types and malformed JSON -----------------------------------------------


@pytest.mark.usefixtures("unchanged")
class TestContentTypeAndSyntax:
    @pytest.mark.parametrize(
        "ctype",
        [
            "text/plain",
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "image/png",
        ],
    )
    def test_wrong_content_types_are_415(self, admin: httpx.Client, ctype: str) -> None:
        body = json.dumps(open_body()).encode()
        assert_problem(admin.post("/tickets", content=body, headers={"content-type": ctype}), 415)

    def test_wrong_content_type_on_a_bodyless_command_is_415(
        self, admin: httpx.Client, ticket: str
    ) -> None:
        r = admin.post(
            f"/tickets/{ticket}/accept", content=b"<x/>", headers={"content-type": "text/xml"}
        )
        assert_problem(r, 415)

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"{",
            b'{"title": ',
            b"{'title': 'x'}",
            b'{"title": "x",}',
            b'{"title": "x"} trailing',
            b'{"title": "x" /* comment */}',
            b"null",
            b"[]",
            b'"a string"',
            b"42",
            b"\xef\xbb\xbf\xef\xbb\xbf{}",
            b'{"title": NaN}',
            b'{"title": Infinity}',
            b'{"title": undefined}',
            b'{"title": "unterminated}',
            b'{"a": "\\x41"}',
            b"\x00\x00\x00{",
        ],
    )
    def test_malformed_json_is_4xx(self, admin: httpx.Client, body: bytes) -> None:
        assert_problem(post_raw(admin, "/tickets", body), 400, 422)

    @pytest.mark.parametrize(
        "extra",
        [{"actor": "root"}, {"id": NIL}, {"status": "closed"}, {"title": {"$ne": None}}],
        ids=["actor", "id", "status", "operator-object"],
    )
    def test_unknown_or_wrongly_typed_fields_are_422(
        self, admin: httpx.Client, extra: dict[str, Any]
    ) -> None:
        assert_problem(admin.post("/tickets", json={**open_body(), **extra}), 422)


# --- numbers and query parameters ---------------------------------------------------


@pytest.mark.usefixtures("unchanged")
class TestNumbers:
    @pytest.mark.parametrize(
        "score",
        [
            b"0",
            b"6",
            b"-1",
            b"1.5",
            b"1e400",
            b"-1e400",
            b"9" * 400,
            b"NaN",
            b"true",
            b'"x"',
            str(2**64).encode(),
            b"null",
        ],
    )
    def test_rating_out_of_range_is_4xx(
        self, admin: httpx.Client, ticket: str, score: bytes
    ) -> None:
        body = b'{"score": ' + score + b"}"
        # (true is the integer 1 to pydantic: a valid score the admin may not give, 403.)
        assert_problem(post_raw(admin, f"/tickets/{ticket}/satisfaction", body), 400, 403, 422)

    @pytest.mark.parametrize("capacity", [0, -5, 1001, 2**63, 2**64, 10**30, 1.5])
    def test_agent_capacity_out_of_range_is_422(
        self, admin: httpx.Client, people: Seed, capacity: float
    ) -> None:
        body = {"name": "Zed", "queues": [people.queue], "capacity": capacity}
        assert_problem(admin.post("/agents", json=body), 422)

    @pytest.mark.parametrize("level", [0, 11, -(2**63), 2**63])
    def test_escalation_level_out_of_range_is_422(
        self, admin: httpx.Client, ticket: str, level: int
    ) -> None:
        body = {
            "kind": "hierarchical",
            "target_type": "lead",
            "target": "boss",
            "reason": "slow",
            "level": level,
        }
        assert_problem(admin.post(f"/tickets/{ticket}/escalations", json=body), 422)

    @pytest.mark.parametrize(
        "query",
        [
            "after=-1",
            "after=abc",
            "after=1.5",
            "limit=0",
            "limit=10001",
            "limit=-1",
            f"limit={2**64}",
            "after=",
            "after=1e3",
        ],
    )
    def test_event_paging_out_of_range_is_422(self, admin: httpx.Client, query: str) -> None:
        assert_problem(admin.get(f"/events?{query}"), 422)

    @pytest.mark.parametrize(
        "query",
        [
            "version=0",
            "version=-1",
            "version=abc",
            "as_of=yesterday",
            "as_of=2026-01-01T00:00:00",
            "as_of=99999-01-01T00:00:00Z",
            "as_of=1e20",
            "as_of=2026-13-45T99:99:99Z",
            "as_of=0001-01-01T00:00:00Z",
        ],
    )
    def test_ticket_query_out_of_range_is_4xx(
        self, admin: httpx.Client, ticket: str, query: str
    ) -> None:
        assert_problem(admin.get(f"/tickets/{ticket}?{query}"), 404, 422)


# Both were 500 (OverflowError in the SQLite recorder) until the API bounded them.
@pytest.mark.parametrize("version", [INT64_MAX + 1, 10**30])
def test_ticket_version_beyond_int64_is_4xx(admin: httpx.Client, ticket: str, version: int) -> None:
    assert_problem(admin.get(f"/tickets/{ticket}?version={version}"), 404, 422)


@pytest.mark.parametrize("after", [INT64_MAX + 1, 10**30])
def test_events_after_beyond_int64_is_4xx(admin: httpx.Client, after: int) -> None:
    assert_problem(admin.get(f"/events?after={after}"), 422)


# --- paths -------------------------------------------------------------------------

NOT_UUIDS = [
    "1",
    "abc",
    "a" * 5000,
    "00000000-0000-0000-0000-00000000000G",
    "%00",
    "%ff%fe",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%2f..%2f",
    "%20",
    "null",
    "-1",
    "💥",
    "00000000-0000-0000-0000-000000000000%0d%0aX-Injected:%201",
]


@pytest.mark.usefixtures("unchanged")
class TestPaths:
    @pytest.mark.parametrize("segment", NOT_UUIDS, ids=lambda s: repr(s[:20]))
    @pytest.mark.parametrize(
        ("method", "template"),
        [
            ("GET", "/tickets/{}"),
            ("POST", "/tickets/{}/start"),
            ("POST", "/tickets/{}/comments"),
            ("GET", "/escalations/{}"),
            ("POST", "/escalations/{}/acknowledge"),
            ("POST", "/agents/{}"),
        ],
    )
    def test_path_params_that_are_not_uuids_are_4xx(
        self, admin: httpx.Client, segment: str, method: str, template: str
    ) -> None:
        url = template.format(segment)
        r = admin.request(method, url, json={"body": "x"} if method == "POST" else None)
        assert_problem(r, 404, 405, 422)

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("DELETE", "/tickets"),
            ("PUT", f"/tickets/{NIL}"),
            ("PATCH", "/queues"),
            ("GET", "/nowhere"),
            ("POST", "/events"),
            ("GET", "/schemas/%00"),
        ],
    )
    def test_unknown_routes_and_methods_are_problems(
        self, admin: httpx.Client, method: str, path: str
    ) -> None:
        assert_problem(admin.request(method, path, json={}), 404, 405)

    def test_unknown_ids_are_404(self, admin: httpx.Client) -> None:
        # A command the caller's role may send: an unknown ticket is a 404.
        assert_problem(admin.post(f"/tickets/{uuid.uuid4()}/close", json={}), 404)
        # One the role may never send is refused first, before anything is loaded.
        assert_problem(admin.post(f"/tickets/{uuid.uuid4()}/start"), 403)
        assert_problem(admin.get(f"/escalations/{uuid.uuid4()}"), 404)


def test_requester_cannot_read_the_event_stream(server: Server, people: Seed) -> None:
    r = httpx.get(f"{server.url}/events", headers=auth(people.requester_key))
    assert_problem(r, 403)
