"""``python -m sfu``: run the SFU agent of this node until SIGTERM (drain) or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from sfu.agent import SfuAgent
from sfu.settings import SfuSettings


async def _main(settings: SfuSettings) -> None:
    agent = SfuAgent(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.request_drain)
    await agent.run()


def main() -> None:
    settings = SfuSettings()  # type: ignore[call-arg]  # filled from the environment
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # botocore logs request bodies at DEBUG; keep it quieter than the agent.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
