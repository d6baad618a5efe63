"""Sends every non-blank line of a file through the Python client (clients/python), as the
end-to-end tests' Python producer, and prints "acked N reconnects M" when all are acknowledged.

    python3 send_file.py CLIENTS_DIR SOCKET FORMAT FILE [MAX_IN_FLIGHT]
"""
import asyncio
import sys

sys.path.insert(0, sys.argv[1])
from pm_ingestd import IngestClient  # noqa: E402


async def main(sock, fmt, path, max_in_flight):
    lines = [line.rstrip("\n") for line in open(path) if line.strip()]
    async with IngestClient(sock, format=fmt, max_in_flight=max_in_flight) as client:
        await asyncio.gather(*(client.send_text(line) for line in lines))
        print("acked", client.stats.acked, "reconnects", client.stats.reconnects)


asyncio.run(main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 1000))
