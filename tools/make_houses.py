"""Write the README's example tables: ``houses.csv`` (600 rows) and
``new_houses.csv`` (5 rows), semicolon-separated, with missing values and
two text columns, as real exports often are.

    python tools/make_houses.py [FOLDER]

The prices follow a made-up rule (area, rooms, district and heating, plus
noise) from a fixed seed, so the README's figures can be reproduced.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

DISTRICTS = {"north": 40.0, "centre": 120.0, "south": 10.0}
HEATING = {"gas": 15.0, "electric": 0.0, "heat pump": 30.0}


def table(rng: np.random.Generator, n: int, with_price: bool) -> list[str]:
    area = rng.uniform(35, 220, n)
    rooms = np.clip(np.round(area / 30 + rng.normal(0, 0.7, n)), 1, 9).astype(int)
    district = rng.choice(list(DISTRICTS), n)
    heating = rng.choice(list(HEATING), n)
    price = 1.8 * area + 6 * rooms + [DISTRICTS[d] for d in district] + [HEATING[h] for h in heating]
    price = price + rng.normal(0, 25, n)
    lines = ["area;rooms;district;heating" + (";price" if with_price else "")]
    for i in range(n):
        cells = [f"{area[i]:.1f}", str(rooms[i]), district[i], heating[i]]
        for j in (0, 1):  # about 3% of the numbers are missing
            if rng.random() < 0.03:
                cells[j] = "" if j == 0 else "NA"
        if with_price:
            cells.append(f"{price[i]:.1f}")
        lines.append(";".join(cells))
    return lines


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    rng = np.random.default_rng(2026)
    (folder / "houses.csv").write_text("\n".join(table(rng, 600, True)) + "\n")
    (folder / "new_houses.csv").write_text("\n".join(table(rng, 5, False)) + "\n")
    print(f"wrote {folder / 'houses.csv'} and {folder / 'new_houses.csv'}")


if __name__ == "__main__":
    main()
