#!/usr/bin/env python3
"""Plots a soak run of scripts/bench-pixel.sh (BENCH_SOAK=1, many short rounds) as an
SVG: requests per second, p50 and p99 latency, and RSS, one point per round.

usage: scripts/plot-soak.py BENCH_OUTPUT SVG_FILE [TITLE]
Reads the "round N pixel ..." lines (req/s, p50, p99, RSS max) of the bench output."""
import re
import sys

ROUND = re.compile(
    r"^round\s+(\d+)\s+pixel\s+(\d+) req/s\s+p50\s+(\d+) us\s+p99\s+(\d+) us.*RSS max\s+(\d+) MiB")


def main():
    src, out = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else "soak"
    rows = []
    for line in open(src, encoding="utf-8", errors="replace"):
        m = ROUND.match(line.strip())
        if m:
            rows.append(tuple(int(g) for g in m.groups()))
    if not rows:
        sys.exit(f"no 'round N pixel' lines in {src}")
    panels = [
        ("requests/s", [r[1] for r in rows], ""),
        ("p50 / p99 latency (ms)", [r[2] / 1000 for r in rows], [r[3] / 1000 for r in rows]),
        ("RSS max (MiB)", [r[4] for r in rows], ""),
    ]
    w, ph, left, top = 720, 150, 70, 40
    h = top + len(panels) * (ph + 40)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{title}</text>']
    n = len(rows)
    for i, (label, a, b) in enumerate(panels):
        y0 = top + i * (ph + 40)
        series = [a] + ([b] if b else [])
        hi = max(max(s) for s in series) * 1.1 or 1
        svg.append(f'<text x="{left}" y="{y0 - 6}">{label}</text>')
        svg.append(f'<rect x="{left}" y="{y0}" width="{w - left - 20}" height="{ph}" '
                   f'fill="none" stroke="#999"/>')
        for frac in (0, 0.5, 1):
            v = hi * frac
            y = y0 + ph - ph * frac
            svg.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{v:,.0f}</text>')
        for s, colour in zip(series, ("#1f77b4", "#d62728")):
            pts = []
            for k, v in enumerate(s):
                x = left + (w - left - 20) * (k / max(n - 1, 1))
                y = y0 + ph - ph * (v / hi)
                pts.append(f"{x:.1f},{y:.1f}")
            svg.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"/>')
        svg.append(f'<text x="{w - 20}" y="{y0 + ph + 14}" text-anchor="end">'
                   f'rounds 1 to {n}, in order</text>')
    svg.append("</svg>")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
