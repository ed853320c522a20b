#!/usr/bin/env python3
"""Which tables the bytes written to SQLite's WAL belong to.

    scripts/wal-pages.py tail DATA_DIR SECONDS   # while the server runs: counts frames
    scripts/wal-pages.py map DATA_DIR            # after it: frames per table and index

`tail` reads the store's WAL as it is written (every 10 ms; it follows the WAL when it
starts over) and saves how many frames each page number got to DATA_DIR/wal-pages.json.
`map` names each page's table or index with SQLite's `dbstat` and prints frames and bytes
per stored event. With `scripts/bench-pixel.sh` (BENCH_KEEP=1 keeps the data directory):

    TMPDIR=/tmp/w BENCH_KEEP=1 scripts/bench-pixel.sh --mix realistic &
    scripts/wal-pages.py tail "$(ls -d /tmp/w/bench-pixel.*/data)" 75   # run and drain
    scripts/wal-pages.py map /tmp/w/bench-pixel.*/data

The tail costs CPU of its own (the rate falls), and pages freed and reused by another
table in between are counted under their last owner: for where the bytes go, not how fast.
"""
import collections
import json
import os
import sqlite3
import struct
import sys
import time


def tail(data, seconds):
    wal = os.path.join(data, "pixeltrack.db-wal")
    counts, commits = collections.Counter(), 0
    salt, off, page_size = None, 32, 0
    end = time.time() + seconds
    while time.time() < end:
        try:
            f = open(wal, "rb")
        except FileNotFoundError:
            time.sleep(0.02)
            continue
        with f:
            head = f.read(32)
            if len(head) == 32:
                page_size = struct.unpack(">I", head[8:12])[0]
                if head[16:24] != salt:  # the WAL started over
                    salt, off = head[16:24], 32
                frame = 24 + page_size
                f.seek(off)
                data_read = f.read(64 << 20)
                n = 0
                while (n + 1) * frame <= len(data_read):
                    h = data_read[n * frame : n * frame + 24]
                    page, size_after = struct.unpack(">II", h[:8])
                    if h[8:16] != salt or page == 0:
                        break  # a frame of an earlier WAL generation: not written yet
                    counts[page] += 1
                    commits += size_after != 0
                    n += 1
                off += n * frame
        time.sleep(0.01)
    out = os.path.join(data, "wal-pages.json")
    json.dump({"page_size": page_size, "commits": commits, "counts": counts}, open(out, "w"))
    print(f"{sum(counts.values())} frames, {commits} commits, {len(counts)} pages -> {out}")


def name_pages(data):
    saved = json.load(open(os.path.join(data, "wal-pages.json")))
    db = sqlite3.connect(os.path.join(data, "pixeltrack.db"))
    owner = {page: name for name, page in db.execute("SELECT name, pageno FROM dbstat")}
    events = db.execute("SELECT count(*) FROM events").fetchone()[0] or 1
    frame = saved["page_size"] + 24
    by = collections.Counter()
    for page, n in saved["counts"].items():
        by[owner.get(int(page), "(freed)")] += n
    total = sum(by.values())
    print(f"{events} events, {total} frames in {saved['commits']} commits: "
          f"{total * frame / events:.0f} B per event to the WAL")
    rest = 0
    for name, n in by.most_common():
        if n * frame / events < 0.5:
            rest += n
            continue
        print(f"  {name:28s} {n:9d} frames {100 * n / total:5.1f} % {n * frame / events:7.1f} B/event")
    print(f"  {'(the rest, each < 0.5 B)':28s} {rest:9d} frames")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "tail":
        tail(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "map":
        name_pages(sys.argv[2])
    else:
        sys.exit(__doc__)
