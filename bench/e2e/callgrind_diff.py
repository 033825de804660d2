#!/usr/bin/env python3
"""The cost of each function per unit of work, from two callgrind profiles of the same program
on different amounts of work (N1 and N2 lines, requests, ...): the difference of their self
instruction counts divided by N2 - N1, so that start-up, handshakes and other one-off costs
cancel out. Prints the functions over a threshold, largest first, and the total.

usage: callgrind_diff.py FIRST SECOND UNITS [--min INSTRUCTIONS] [--inclusive]
(FIRST and SECOND from valgrind --tool=callgrind; UNITS = N2 - N1)
"""
import argparse
import re
import subprocess


def costs(path, inclusive):
    args = ["callgrind_annotate", "--threshold=100"]
    if inclusive:
        args.append("--inclusive=yes")
    out = subprocess.run(args + [path], capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = re.sub(r"^\S*?:(?=[^:/])", "", m.group(2), count=1)  # drop the file
        result[name] = result.get(name, 0) + int(m.group(1).replace(",", ""))
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("units", type=int)
    p.add_argument("--min", type=float, default=100.0, help="smallest cost per unit shown")
    p.add_argument("--inclusive", action="store_true", help="inclusive costs (callees counted)")
    a = p.parse_args()
    c1, c2 = costs(a.first, a.inclusive), costs(a.second, a.inclusive)
    rows = sorted(((c2.get(k, 0) - c1.get(k, 0)) / a.units, k) for k in set(c1) | set(c2))
    rows.reverse()
    if not a.inclusive:
        print(f"{sum(r[0] for r in rows):12,.0f}  all functions, per unit")
    for per_unit, name in rows:
        if per_unit >= a.min:
            print(f"{per_unit:12,.0f}  {name[:160]}")


if __name__ == "__main__":
    main()
