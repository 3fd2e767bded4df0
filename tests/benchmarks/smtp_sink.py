"""An SMTP server that only counts, for B4: aiosmtpd on loopback in its own process.

    python -m tests.benchmarks.smtp_sink      prints "PORT CONTROL_PORT", then serves

The SMTP port accepts every message (250) and counts it, without parsing or
storing it, so that the sink costs both sides of B4 as little as possible.
Connecting to the control port returns the count as one line.
"""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import SMTP

from tests.support.local_services import LOOPBACK
from tests.support.smtp import SmtpCatcher

# The tests' SMTP catcher, counting only.
catcher = SmtpCatcher(keep=False)


async def _control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(f"{catcher.count}\n".encode())
    await writer.drain()
    writer.close()


async def main() -> None:
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(catcher), host=LOOPBACK, port=0)
    control = await asyncio.start_server(_control, host=LOOPBACK, port=0)
    print(smtp.sockets[0].getsockname()[1], control.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


async def count(control_port: int) -> int:
    reader, writer = await asyncio.open_connection(LOOPBACK, control_port)
    line = await reader.readline()
    writer.close()
    return int(line)


if __name__ == "__main__":
    asyncio.run(main())
