"""KV v2 reads with hvac (Python's Vault client), for benches/benches/vault.rs.

Usage: hvac_reads.py ADDR TOKEN MOUNT PATH SEQUENTIAL_READS CONCURRENT_READS CONCURRENCY
Prints two lines: `sequential <reads/s>` and `concurrent <reads/s>` (timed inside Python, so
interpreter start-up is not counted).
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import hvac

addr, token, mount, path = sys.argv[1:5]
sequential, concurrent, concurrency = (int(x) for x in sys.argv[5:8])

client = hvac.Client(url=addr, token=token)
client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)  # warm up

start = time.perf_counter()
for _ in range(sequential):
    client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
print(f"sequential {sequential / (time.perf_counter() - start):.1f}")

# One client (one connection pool) per worker thread, as hvac users do with threads.
clients = [hvac.Client(url=addr, token=token) for _ in range(concurrency)]
per_worker = concurrent // concurrency


def work(c):
    for _ in range(per_worker):
        c.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)


start = time.perf_counter()
with ThreadPoolExecutor(max_workers=concurrency) as pool:
    list(pool.map(work, clients))
print(f"concurrent {per_worker * concurrency / (time.perf_counter() - start):.1f}")
