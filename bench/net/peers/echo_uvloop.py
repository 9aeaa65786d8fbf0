"""echo_uvloop.py: the Python peer of bench-echo: `echo_uvloop.py PORT
[asyncio]`, an asyncio echo server (Protocol, the fastest asyncio form)
on uvloop, or on the plain asyncio loop with `asyncio`."""
import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port = int(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "asyncio":
        asyncio.run(main(port))
    else:
        import uvloop
        uvloop.install()
        asyncio.run(main(port))
