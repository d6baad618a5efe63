"""Sends every non-blank line of a file through the Python client (clients/python), as the
end-to-end tests' Python producer, and prints "acked N reconnects M" when all are acknowledged.
The file is read as it grows (a FIFO works): its lines are submitted in pieces of about 64 KiB as
they are read.

    python3 send_file.py CLIENTS_DIR SOCKET FORMAT FILE [MAX_IN_FLIGHT]
"""
import asyncio
import sys

sys.path.insert(0, sys.argv[1])
from pm_ingestd import IngestClient  # noqa: E402

READ_HINT_BYTES = 1 << 16


async def main(sock, fmt, path, max_in_flight):
    loop = asyncio.get_running_loop()
    async with IngestClient(sock, format=fmt, max_in_flight=max_in_flight) as client:
        acks = []
        with open(path) as source:
            while True:
                # Read off the event loop: a FIFO blocks until its writer writes or closes.
                lines = await loop.run_in_executor(None, source.readlines, READ_HINT_BYTES)
                if not lines:
                    break
                acks.extend(client.submit_text(line.rstrip("\n")) for line in lines if line.strip())
        await asyncio.gather(*acks)
        print("acked", client.stats.acked, "reconnects", client.stats.reconnects)


asyncio.run(main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 1000))
