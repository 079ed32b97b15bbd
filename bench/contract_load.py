"""Drives the gig bench's REST side (bench/contracts.sh) over keep-alive
HTTP/1.1 connections with asyncio:

  lifecycles FILE PORT SECONDS WORKERS: each worker takes the next line of
    FILE (gig id, proposal id, client token, hustler token) and runs its
    contract's life: accept (201), deliver (200), approve (200), each answered
    only once durable. Prints "lifecycles seconds failures".
  search PORT TOKEN N QUERY...: N sequential GET /api/v1/gigs?q=QUERY per
    query; prints "query p50_ms p99_ms items" per query.
"""
import asyncio
import json
import sys
import time
import urllib.parse


async def open_conn(port):
    return await asyncio.open_connection("127.0.0.1", port)


async def http(conn, method, path, token, body=b""):
    reader, writer = conn
    head = "%s %s HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer %s\r\n" % (method, path, token)
    if body:
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    writer.write(head.encode() + b"\r\n" + body)
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
    data = await reader.readexactly(length) if length else b""
    return status, data


async def lifecycles(path, port, seconds, workers):
    rows = [line.split() for line in open(path)]
    nxt = [0]
    done = [0]
    failed = [0]
    deadline = time.monotonic() + seconds

    async def worker():
        conn = await open_conn(port)
        while time.monotonic() < deadline and nxt[0] < len(rows):
            gig, prop, ctok, htok = rows[nxt[0]]
            nxt[0] += 1
            st, data = await http(conn, "POST", "/api/v1/gigs/%s/accept/%s" % (gig, prop), ctok)
            if st != 201:
                failed[0] += 1
                continue
            cid = json.loads(data)["id"]
            st, _ = await http(conn, "POST", "/api/v1/contracts/%s/deliver" % cid, htok, b"{}")
            if st != 200:
                failed[0] += 1
                continue
            st, _ = await http(conn, "POST", "/api/v1/contracts/%s/approve" % cid, ctok)
            if st != 200:
                failed[0] += 1
                continue
            done[0] += 1
        conn[1].close()

    start = time.monotonic()
    await asyncio.gather(*[worker() for _ in range(workers)])
    print(done[0], "%.3f" % (time.monotonic() - start), failed[0])


async def search(port, token, n, queries):
    conn = await open_conn(port)
    for q in queries:
        times = []
        items = 0
        for _ in range(n):
            t = time.perf_counter()
            st, data = await http(conn, "GET", "/api/v1/gigs?limit=20&q=" + urllib.parse.quote(q),
                                  token)
            times.append((time.perf_counter() - t) * 1000)
            assert st == 200, (st, data)
            items = len(json.loads(data)["items"])
        times.sort()
        print("%s %.2f %.2f %d" % (q.replace(" ", "+"), times[len(times) // 2],
                                   times[min(len(times) - 1, int(len(times) * 0.99))], items))


if __name__ == "__main__":
    if sys.argv[1] == "lifecycles":
        asyncio.run(lifecycles(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
    else:
        asyncio.run(search(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:]))
