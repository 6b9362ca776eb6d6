"""One HTTP exchange with an OpenAI-compatible endpoint, and what an HTTP error status means.

aiohttp directly, as lm-eval does, not the ``openai`` SDK: the SDK spends several times more
CPU a request (request transforms, pydantic response models, httpx wrappers), and a harness
sharing a laptop's cores with its graders must not spend them there (``bench/RESULTS.md``).
Redirects are not followed, and a body over ``max_response_bytes`` is not read
(``_whole_reply``). HTTP 429, 408, 409 and 5xx, timeouts and dropped connections are
``Retryable``; 401, 403 and 404 end the run (``EndpointError``); other statuses end the request.

No exception leaves here chained to the transport's: those may carry the raw server reply,
which may echo the API key. Messages keep the server's words, with the key redacted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import urllib.request
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import certifi

from r1eval import __version__
from r1eval.backends.openai_reply import (
    NoResponse,
    Reply,
    Retryable,
    retry_after_header_s,
    server_message,
)
from r1eval.errors import EndpointError, RequestFailed

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "EndpointHTTP",
    "endpoint_identity",
    "normalise_url",
    "root_cause",
    "too_large_error",
]

#: Sent when no key is given (as the openai SDK does); local servers ignore it.
_NO_KEY = "EMPTY"
#: Waiting for a TCP connection to open never needs the long generation timeout.
CONNECT_TIMEOUT_S = 30.0
#: Statuses below 500 that are worth another attempt (timeout, conflict, rate limit).
_RETRYABLE_4XX = frozenset({408, 409, 429})
_DETAIL_CHARS = 300
#: The largest response body read (``--max-response-mib``): far above any real completion
#: (32,768 tokens of text are well under 1 MiB), small enough that a server sending without end
#: cannot exhaust the memory. Bodies are read in chunks and counted as they arrive.
DEFAULT_MAX_RESPONSE_BYTES = 32 << 20
_READ_CHUNK = 1 << 16


class EndpointHTTP:
    """The HTTP side of one endpoint: its session, one exchange at a time, error statuses
    classified. ``max_connections`` should be at least the number of requests the caller
    keeps in flight."""

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None,
        *,
        timeout_s: float,
        max_connections: int,
        max_response_bytes: int,
    ) -> None:
        self._model = model
        self._base_url = normalise_url(base_url)
        self._key = api_key or None
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._preflight_timeout_s = min(timeout_s, CONNECT_TIMEOUT_S)
        self._max_connections = max_connections
        self._headers = {
            "Authorization": f"Bearer {self._key or _NO_KEY}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"r1eval/{__version__}",
        }
        self._proxy = _proxy_for(self._base_url)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        """Close the HTTP session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        """The session of the running event loop, made on first use. An aiohttp session
        belongs to the loop it was made in: call ``aclose`` before that loop ends (as
        ``evaluate`` does); a backend used again under a new loop opens a new session."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session_loop = loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=_tls_context()),
                headers=self._headers,
            )
        return self._session

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout_s: float
    ) -> Reply:
        """One HTTP exchange; ``NoResponse`` when no HTTP response came back whole.

        Redirects are not followed and a body over the limit is not read (``_whole_reply``).
        """
        timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=min(timeout_s, CONNECT_TIMEOUT_S)
        )
        data = None if body is None else json.dumps(body).encode()
        url = path if "://" in path else self._base_url + path
        try:
            async with self._http().request(
                method, url, data=data, timeout=timeout, proxy=self._proxy,
                allow_redirects=False,
            ) as response:
                return await self._whole_reply(url, response)
        except TimeoutError:  # asyncio's: its cause is a CancelledError, which says nothing
            raise NoResponse(f"no response: timed out after {timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as err:
            raise self._no_response(err) from None

    async def _whole_reply(self, url: str, response: aiohttp.ClientResponse) -> Reply:
        """The reply to a request sent to ``url``: not a redirect (``EndpointError``: following
        it would turn a POST into a GET without its body (301, 302) or send the prompts to
        another host (307, 308)), and a body within the limit (``read_capped``)."""
        if 300 <= response.status < 400:
            location = response.headers.get("Location")
            where = f"to {self._detail(urljoin(url, location))}" if location else "elsewhere"
            raise EndpointError(
                f"{url} redirects (HTTP {response.status}) {where}; r1eval does not follow "
                "redirects: set --base-url to the address that serves the API"
            )
        content = await read_capped(response, self._max_response_bytes)
        return Reply(response.status, response.headers, content)

    def _status_error(self, reply: Reply) -> Exception:
        """Classify an HTTP error status: retry, give up on the request, or on the run."""
        status = reply.status
        detail = self._detail(server_message(reply))
        if status in (401, 403):
            sent = "the API key" if self._key else "the request (no API key was given)"
            return EndpointError(f"{self._base_url} rejected {sent} (HTTP {status}): {detail}")
        if status == 404:
            return EndpointError(
                f"model {self._model!r} not found at {self._base_url} (HTTP 404; check the "
                f"model name and the base URL): {detail}"
            )
        if status >= 500 or status in _RETRYABLE_4XX:
            retry_after_s = retry_after_header_s(reply.headers)
            return Retryable(
                f"HTTP {status}: {detail}", status=status, retry_after_s=retry_after_s
            )
        return RequestFailed(
            f"{self._base_url} rejected the request (HTTP {status}): {detail}",
            transient=False,
            status=status,
        )

    def _no_response(self, err: BaseException, kept: str = "") -> NoResponse:
        """What a transport error says, the key redacted; ``unreachable`` when no connection
        could be opened."""
        return NoResponse(f"no response: {self._detail(root_cause(err))}{kept}",
                          unreachable=isinstance(err, aiohttp.ClientConnectorError))

    def _detail(self, text: str) -> str:
        """Text that came from elsewhere, made safe for a one-line message (key redacted)."""
        if self._key:
            text = text.replace(self._key, "***")
        line = " ".join(text.split())
        return line if len(line) <= _DETAIL_CHARS else line[: _DETAIL_CHARS - 3] + "..."


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, read a chunk at a time; ``RequestFailed`` as soon as it exceeds ``limit``
    bytes (as decoded: a compressed body is counted as it expands), so no more than ``limit``
    is ever held."""
    declared = response.content_length
    if declared is None or declared <= limit:
        body = bytearray()
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            body += chunk
            if len(body) > limit:
                break
        else:
            return bytes(body)
    raise too_large_error(limit, response.status)


def too_large_error(limit: int, status: int) -> RequestFailed:
    return RequestFailed(
        f"the response is larger than {limit / (1 << 20):g} MiB (--max-response-mib), "
        "far more than any completion: not read",
        transient=False, status=status,
    )


def endpoint_identity(model: str, base_url: str) -> dict[str, str]:
    """What identifies an endpoint in provenance and cache keys; raises on a malformed URL."""
    return {"model": model, "base_url": normalise_url(base_url)}


def root_cause(err: BaseException) -> str:
    """The innermost exception, named (aiohttp wraps the socket's error in its own)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's certificate authorities plus certifi's bundle (which the openai SDK
    trusts): some Python builds (python.org's on macOS) come with no system store."""
    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    return context


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``/``HTTP_PROXY``, unless
    ``NO_PROXY`` covers its host), as the openai SDK honours them. Looked up once: aiohttp's
    ``trust_env`` looks it up again in a thread at every request."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def normalise_url(url: str) -> str:
    """``url`` with scheme and host lower-cased, no user:password, no trailing slash."""
    parts = urlsplit(url.strip())
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        host = port = None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise EndpointError(f"not an http(s) URL: {url!r} (expected e.g. http://HOST:PORT/v1)")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))
