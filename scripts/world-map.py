#!/usr/bin/env python3
"""Builds data/world-map.tsv: one line per country, its ISO 3166-1 alpha-2 code and an SVG
path in a 1000 x 500 box (Equal Earth projection), from Natural Earth's 1:110m countries.

Inputs (npm packages, unpacked with `npm pack world-atlas i18n-iso-countries`):
  world-atlas/countries-110m.json   TopoJSON of Natural Earth (public domain), ids ISO numeric
  i18n-iso-countries/codes.json     ISO 3166-1 numeric -> alpha-2 table
Usage: scripts/world-map.py <world-atlas dir> <i18n-iso-countries dir> > data/world-map.tsv
Antarctica is left out; coordinates are whole units, and a point closer than STEP units to the
last one kept is dropped (the map is drawn a few hundred pixels wide).
"""
import json
import math
import sys

atlas, codes_dir = sys.argv[1], sys.argv[2]
topo = json.load(open(f"{atlas}/countries-110m.json"))
alpha2 = {num: a2 for a2, _a3, num, _ in json.load(open(f"{codes_dir}/codes.json"))}
# Natural Earth names for the few features without an ISO numeric id in this file.
BY_NAME = {"Kosovo": "XK", "N. Cyprus": None, "Somaliland": None}

sx, sy = topo["transform"]["scale"]
tx, ty = topo["transform"]["translate"]
arcs = []
for arc in topo["arcs"]:
    x = y = 0
    pts = []
    for dx, dy in arc:
        x += dx
        y += dy
        pts.append((x * sx + tx, y * sy + ty))
    arcs.append(pts)

STEP = 1.5
A1, A2, A3, A4 = 1.340264, -0.081106, 0.000893, 0.003796
M = math.sqrt(3) / 2


def project(lon, lat):
    lam, phi = math.radians(lon), math.radians(lat)
    t = math.asin(M * math.sin(phi))
    t2, t6 = t * t, t ** 6
    x = 2 * math.sqrt(3) * lam * math.cos(t) / (3 * (9 * A4 * t6 * t2 + 7 * A3 * t6 + 3 * A2 * t2 + A1))
    y = A4 * t6 * t2 * t + A3 * t6 * t + A2 * t2 * t + A1 * t
    # Equal Earth spans x in [-2.7064, 2.7064], y in [-1.3173, 1.3173].
    # The same scale on both axes: 1000 units across.
    k = 500 / 2.7064
    return (x + 2.7064) * k, (1.3173 - y) * k


def num(v):
    return str(v) if v < 0 else f" {v}"


def ring(indices):
    """One ring as a compact path: absolute start, then relative whole-unit steps."""
    pts = []
    for i in indices:
        a = arcs[i] if i >= 0 else arcs[~i][::-1]
        pts.extend(a if not pts else a[1:])
    out = []
    for lon, lat in pts:
        x, y = project(lon, lat)
        p = (round(x), round(y))
        if out and math.dist(out[-1], p) < STEP:
            continue
        out.append(p)
    if len(out) < 3:
        return ""
    d = f"M{out[0][0]} {out[0][1]}l"
    steps = []
    for (x0, y0), (x1, y1) in zip(out, out[1:]):
        steps.append(num(x1 - x0) + num(y1 - y0))
    return d + "".join(steps).lstrip() + "z"


rows = {}
for g in topo["objects"]["countries"]["geometries"]:
    code = alpha2.get(g.get("id")) if g.get("id") else BY_NAME.get(g["properties"]["name"])
    if not code or code == "AQ":
        continue
    polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
    d = "".join(ring(r) for poly in polys for r in poly)
    if d:
        rows[code] = rows.get(code, "") + d
ys = [y for g in rows.values() for y in map(int, __import__("re").findall(r"M-?\d+ (-?\d+)", g))]
top, bottom = min(ys) - 10, max(ys) + 10
print(f"# Natural Earth 1:110m countries (public domain) via world-atlas; built by scripts/world-map.py")
print(f"# viewBox 0 {top} 1000 {bottom - top}")
for code in sorted(rows):
    print(f"{code}\t{rows[code]}")
