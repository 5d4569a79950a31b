#!/usr/bin/env python3
"""Summary and plots of scripts/bench-scale.sh: reads its CSV (date,size,observations,metric,
endpoint,conns,value), prints the growth table against the goals of issue 15, and writes SVG line
charts (standard library only) next to the CSV:
  scale-bytes.svg      bytes per observation (heap, each index, total) — fresh and after an import
  scale-import.svg     certhist import rate and the raw COPY ceiling
  scale-p99-cN.svg     p99 per endpoint, API (solid) and pgbench on the same SQL (dashed), N connections
Usage: scale-plot.py CSV OUTDIR"""
import csv
import math
import os
import sys
from collections import defaultdict

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
ENDPOINTS = ["ip", "hosts", "suffix", "substring", "overlap", "expand", "uiip"]
LABELS = {"ip": "/ip/{ip}", "hosts": "/certificates/{h}/hosts", "suffix": "/search *.suffix",
          "substring": "/search *substring*", "overlap": "/overlap", "expand": "/expand",
          "uiip": "/ip/{ip} page"}


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fmt_count(n):
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            v = n / div
            return f"{v:.0f}{suf}" if abs(v - round(v)) < 0.05 else f"{v:.1f}{suf}"
    return str(int(n))


def nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=10 * mag)
    t = math.floor(lo / step) * step
    out = []
    while t <= hi + step * 0.001:
        out.append(round(t, 10))
        t += step
    return out


def chart(path, title, ylabel, series, xs_all, hline=None, ymin0=True, note=""):
    """series: list of (label, colour, dashed, [(x, y)])."""
    W, H, L, R, T, B = 860, 460, 70, 300, 48, 50
    pw, ph = W - L - R, H - T - B
    xs = sorted(set(xs_all))
    lx = [math.log10(x) for x in xs]
    x0, x1 = (min(lx), max(lx)) if len(lx) > 1 else (lx[0] - 0.5, lx[0] + 0.5)
    pad = (x1 - x0) * 0.05
    x0, x1 = x0 - pad, x1 + pad
    ys = [y for _, _, _, pts in series for _, y in pts]
    if hline is not None:
        ys.append(hline[0])
    if not ys:
        return
    y0 = 0 if ymin0 else min(ys)
    y1 = max(ys) * 1.08
    ticks = nice_ticks(y0, y1)
    y1 = max(y1, ticks[-1])
    y0 = min(y0, ticks[0])

    def X(x):
        return L + (math.log10(x) - x0) / (x1 - x0) * pw

    def Y(y):
        return T + ph - (y - y0) / (y1 - y0) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L}" y="20" font-size="15" font-weight="bold">{esc(title)}</text>',
         f'<text x="{L}" y="38" font-size="11" fill="#555">{esc(note)}</text>']
    for t in ticks:
        o.append(f'<line x1="{L}" x2="{L + pw}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{Y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for x in xs:
        o.append(f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{T}" y2="{T + ph}" stroke="#eee"/>')
        o.append(f'<text x="{X(x):.1f}" y="{T + ph + 18}" text-anchor="middle">{fmt_count(x)}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 10}" text-anchor="middle">observations (log scale)</text>')
    o.append(f'<text transform="translate(16,{T + ph / 2}) rotate(-90)" text-anchor="middle">{esc(ylabel)}</text>')
    if hline is not None:
        v, label = hline
        o.append(f'<line x1="{L}" x2="{L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#000" stroke-dasharray="2,3"/>')
        o.append(f'<text x="{L + 4}" y="{Y(v) - 4:.1f}">{esc(label)}</text>')
    ly = T + 6
    for label, colour, dashed, pts in series:
        pts = sorted(pts)
        if not pts:
            continue
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        d = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)
        o.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in pts:
            o.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{colour}"><title>{esc(label)}: {y:g}</title></circle>')
        o.append(f'<line x1="{L + pw + 12}" x2="{L + pw + 36}" y1="{ly + 4}" y2="{ly + 4}" stroke="{colour}" stroke-width="2"{dash}/>')
        o.append(f'<text x="{L + pw + 42}" y="{ly + 8}">{esc(label)}</text>')
        ly += 18
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, outdir = sys.argv[1], sys.argv[2]
    # v[size_obs][(metric, endpoint, conns)] = value
    v = defaultdict(dict)
    labels, dates = {}, {}
    with open(src) as f:
        for r in csv.DictReader(f):
            n = int(r["observations"])
            labels[n] = r["size"]
            dates[n] = r["date"]
            try:
                v[n][(r["metric"], r["endpoint"], r["conns"])] = float(r["value"])
            except ValueError:
                pass
    sizes = sorted(v)
    if not sizes:
        sys.exit("no rows in " + src)
    g = lambda n, m, e="-", c="-": v[n].get((m, e, c))  # noqa: E731
    conns = sorted({int(k[2]) for n in sizes for k in v[n] if k[0] == "api_p99"})
    eps = [e for e in ENDPOINTS if any((("api_p99", e, str(c)) in v[n]) for n in sizes for c in conns)]

    print(f"{'size':>6} {'rows':>12} {'B/obs fresh':>12} {'heap+pk+rev':>20} {'B/obs grown':>12} "
          f"{'keys/obs':>9} {'B/key':>6} {'+keys':>7} "
          f"{'import/s':>9} {'COPY/s':>9} {'ratio':>6} {'load':>5}")
    for n in sizes:
        fr = [g(n, f"bytes_{p}_fresh") for p in ("heap", "pkey", "reverse")]
        split = "+".join(f"{x:.0f}" for x in fr) if None not in fr else "-"
        imp, ceil = g(n, "import_rows_per_s"), g(n, "ceiling_rows_per_s")
        ratio = f"{100 * imp / ceil:.0f}%" if imp and ceil else "-"
        tot, grown = g(n, "bytes_total_fresh"), g(n, "bytes_total_after_import")
        kpo, bpk, allb = (g(n, m) for m in ("keys_per_observation_fresh", "bytes_per_key_fresh", "bytes_all_fresh"))
        print(f"{labels[n]:>6} {int(g(n, 'rows') or n):>12} {tot or 0:>12.1f} {split:>20} {grown or 0:>12.1f} "
              f"{kpo or 0:>9.3f} {bpk or 0:>6.1f} {allb or 0:>7.1f} "
              f"{imp or 0:>9.0f} {ceil or 0:>9.0f} {ratio:>6} {g(n, 'load_average') or 0:>5.1f}")
    print("goals (issue 15): ≤ 150 B per observation at 100M; import ≥ 50 % of the COPY ceiling at every size;")
    print("  +keys = sightings and the certificate keys they need (cert_keys, one per SHA-1) per observation")
    base = sizes[0]
    for c in conns:
        print(f"\np99 ms, {c} connection(s): API (pgbench on the same SQL); × = API p99 ÷ API p99 at {labels[base]} "
              "(goal ≤ 1.5× for the lookups)")
        print(f"{'endpoint':<26}" + "".join(f"{labels[n]:>24}" for n in sizes))
        for e in eps:
            cells = []
            for n in sizes:
                a, p = g(n, "api_p99", e, str(c)), g(n, "pg_p99", e, str(c))
                b = g(base, "api_p99", e, str(c))
                if a is None:
                    cells.append(f"{'-':>24}")
                    continue
                x = f" {a / b:.2f}×" if b and n != base else ""
                cells.append(f"{f'{a:.2f} ({p:.2f}){x}':>24}")
            print(f"{LABELS[e]:<26}" + "".join(cells))

    xs = sizes
    note = "scripts/bench-scale.sh; " + ", ".join(
        f"{labels[n]} on {dates[n]} (load {g(n, 'load_average') or 0:.1f})" for n in sizes) + "; 2 shared cores"
    s = []
    parts = [("total", "sightings total"), ("heap", "heap"), ("pkey", "primary key (ip, port, cert_id)"),
             ("reverse", "reverse (cert_id, ip)"), ("all", "sightings + certificate keys")]
    for i, (m, label) in enumerate(parts):
        for state, dashed in (("fresh", False), ("after_import", True)):
            pts = [(n, g(n, f"bytes_{m}_{state}")) for n in sizes if g(n, f"bytes_{m}_{state}") is not None]
            s.append((f"{label}, {'fresh' if state == 'fresh' else 'after import'}", COLOURS[i], dashed, pts))
    chart(os.path.join(outdir, "scale-bytes.svg"), "Bytes per observation (sightings, schema V7)",
          "bytes per observation", s, xs, hline=(150, "goal 150 B"), note=note)
    s = [("certhist import observations", COLOURS[0], False,
          [(n, g(n, "import_rows_per_s")) for n in sizes if g(n, "import_rows_per_s")]),
         ("raw COPY ceiling", COLOURS[1], True,
          [(n, g(n, "ceiling_rows_per_s")) for n in sizes if g(n, "ceiling_rows_per_s")])]
    chart(os.path.join(outdir, "scale-import.svg"), "Bulk import into the grown table", "rows per second", s, xs, note=note)
    for c in conns:
        s = []
        for i, e in enumerate(eps):
            for metric, dashed, who in (("api_p99", False, "API"), ("pg_p99", True, "pgbench")):
                pts = [(n, g(n, metric, e, str(c))) for n in sizes if g(n, metric, e, str(c)) is not None]
                s.append((f"{LABELS[e]} {who}", COLOURS[i % len(COLOURS)], dashed, pts))
        chart(os.path.join(outdir, f"scale-p99-c{c}.svg"),
              f"p99 latency, {c} connection(s) (API solid, pgbench dashed)", "p99 ms", s, xs, note=note)
    print(f"\nplots: {outdir}/scale-bytes.svg scale-import.svg " + " ".join(f"scale-p99-c{c}.svg" for c in conns))


main()
