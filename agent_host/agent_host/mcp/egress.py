"""Where the host may reach MCP servers added at run time, and the HTTP client every MCP connection uses.

A server URL sent through the API makes the host open connections on the caller's behalf: pointed at
loopback, a private network or a cloud metadata address, it would reach what the caller cannot. Such URLs
are refused unless the operator lists their host in MCP_ALLOWED_HOSTS; the check runs when the server is
added and again before every request (a name can resolve elsewhere later: DNS rebinding).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2

from agent_host.errors import McpConfigInvalid, McpUrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# The SDK's defaults for MCP traffic: a server may hold a response stream open for minutes.
REQUEST_TIMEOUT = 30.0
STREAM_READ_TIMEOUT = 300.0
# Instance metadata services, named in the refusal (most are also link-local or private anyway).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def parse_hosts(value: str) -> frozenset[str]:
    """MCP_ALLOWED_HOSTS as a set: comma-separated host names or addresses, case and brackets ignored."""
    return frozenset(host.strip().strip("[]").lower() for host in value.split(",") if host.strip())


def why_refused(address: IPAddress) -> str | None:
    """What makes an address one the host must not reach on a caller's say-so, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not address.is_global:  # shared (100.64/10), documentation and other special-purpose ranges
        return "not a public address"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    allowed_hosts: frozenset[str]
    resolve_timeout: float = 5.0

    async def check(self, url: str) -> None:
        """Raises McpUrlRefused if the URL's host is or resolves to an address it must not reach."""
        host = (urlsplit(url).hostname or "").lower()
        if not host:
            raise McpConfigInvalid(f"{url!r} has no host")
        if host in self.allowed_hosts:
            return
        if host in METADATA_HOSTS:
            raise McpUrlRefused(_refusal(host, host, "a cloud metadata host"))
        for address in await self._resolve(host):
            reason = why_refused(address)
            if reason is not None:
                raise McpUrlRefused(_refusal(host, str(address), reason))

    async def _resolve(self, host: str) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.resolve_timeout):
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise McpConfigInvalid(f"{host} did not resolve within {self.resolve_timeout:g} s") from None
        except OSError as exc:
            raise McpConfigInvalid(f"{host} does not resolve: {exc.strerror or exc}") from None
        # An IPv6 answer may carry a zone (fe80::1%eth0): the address is what precedes it.
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _refusal(host: str, address: str, reason: str) -> str:
    where = host if host == address else f"{host} ({address})"
    return (
        f"MCP server URL refused: {where} is {reason}; an operator can allow the host by adding it to MCP_ALLOWED_HOSTS"
    )


def mcp_http_client(
    headers: dict[str, str] | None, connect_timeout: float, policy: EgressPolicy | None = None
) -> httpx2.AsyncClient:
    """The client of one HTTP MCP server; with a policy, every request's destination is checked first.

    Redirects stay off: the SDK follows one only within the server's origin, and nothing else does.
    """
    timeout = httpx2.Timeout(REQUEST_TIMEOUT, connect=connect_timeout, read=STREAM_READ_TIMEOUT)
    hooks = {"request": [_guard(policy)]} if policy is not None else None
    return httpx2.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False, event_hooks=hooks)


def _guard(policy: EgressPolicy) -> Callable[[httpx2.Request], Awaitable[None]]:
    # A request hook, not a transport: it runs whichever transport (an environment proxy too) sends the request.
    async def check(request: httpx2.Request) -> None:
        try:
            await policy.check(str(request.url))
        except (McpUrlRefused, McpConfigInvalid) as exc:
            raise httpx2.ConnectError(exc.message, request=request) from None

    return check
