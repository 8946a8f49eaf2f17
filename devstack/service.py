"""One service of the stack as `up` sees it: where it answers, how it is checked, what runs it."""

from collections.abc import Callable
from dataclasses import dataclass

from devstack.supervisor import Program


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    url: str
    health: Callable[[], str | None]
    program: Program | None  # None: an external server already answers, `up` leaves it alone
    note: str = ""
    # Services of one stage start together, once every service of the stages before is healthy.
    stage: int = 0
    # Run by `up` before supervisord (re)reads its config: files the program needs (its own config...).
    prepare: Callable[[], None] | None = None
    # A service whose full health can wait (Chroma, needed from the workers on; the balancer in front of the
    # agent hosts): at its own stage `up` waits for `early_health`, and for `health` once the services of
    # `ready_stage` are healthy.
    ready_stage: int | None = None
    early_health: Callable[[], str | None] | None = None
    # More ports the program holds (the balancer in front of both tiers).
    more_ports: tuple[int, ...] = ()

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.more_ports)
