"""Process-wide helpers bound to an event loop (the runs of one process share them)."""

from __future__ import annotations

import asyncio
from typing import ClassVar, Self


class PerLoop:
    """One instance per running event loop: ``Cls.current()`` creates it on first use.

    Instances of closed loops are dropped, so tests that each run their own loop never see a
    previous loop's state.
    """

    _instances: ClassVar[dict[asyncio.AbstractEventLoop, PerLoop]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._instances = {}

    @classmethod
    def current(cls) -> Self:
        loop = asyncio.get_running_loop()
        for stale in [known for known in cls._instances if known.is_closed()]:
            del cls._instances[stale]
        instance = cls._instances.get(loop)
        if instance is None:
            instance = cls._instances[loop] = cls()
        return instance  # type: ignore[return-value]
