"""A small synthetic shop export, the data of docs/tutorials/your-data.md.

    python examples/make_shop_data.py --out shop

writes ``shop/orders.csv`` (customer_id, sku, stars 1-5, ordered_at in ISO 8601),
``shop/products.csv`` (sku, name, category, tags joined by "; ") and ``shop/customers.csv``
(customer_id, age_band, region), the way a shop system exports them. The stars have two causes a
model can learn: the product line (Premium and Organic products please, Budget and Mini ones
disappoint) and each customer's two favourite categories (most of their orders, and better
stars). Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

CATEGORIES = {
    "tea": ["Green Tea", "Earl Grey", "Chai Blend", "Mint Infusion", "Oolong", "Rooibos"],
    "coffee": ["Espresso Beans", "Filter Roast", "Cold Brew Kit", "Decaf Blend", "Moka Pot", "Milk Frother"],
    "kitchen": ["Chef Knife", "Cutting Board", "Cast Iron Pan", "Salad Bowl", "Spice Rack", "Kettle"],
    "garden": ["Pruning Shears", "Seed Tray", "Watering Can", "Herb Planter", "Garden Gloves", "Compost Bin"],
    "books": ["Cookbook", "Travel Guide", "Crime Novel", "Poetry Collection", "Garden Handbook", "Tea Atlas"],
    "toys": ["Wooden Train", "Puzzle Box", "Kite", "Building Blocks", "Card Game", "Plush Bear"],
}
STYLES = {"Premium": 1.0, "Organic": 1.0, "Handmade": 0.8, "Classic": 0.0, "Family": 0.0, "Travel": -0.4,
          "Mini": -1.0, "Budget": -1.2}  # product line -> effect on the stars
TAGS = ["gift", "bestseller", "eco", "new", "sale", "handmade"]
AGES = ["18-24", "25-34", "35-44", "45-54", "55+"]
REGIONS = ["north", "south", "east", "west"]


def make_shop(out: Path, customers: int = 300, products: int = 120, seed: int = 0) -> dict[str, int]:
    """Write the three files into ``out``; returns the row counts."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    names = list(CATEGORIES)
    product_rows = []
    for p in range(products):
        category = names[p % len(names)]
        noun = CATEGORIES[category][(p // len(names)) % len(CATEGORIES[category])]
        style = list(STYLES)[int(rng.integers(len(STYLES)))]
        tags = [str(t) for t in rng.choice(TAGS, size=int(rng.integers(1, 3)), replace=False)]
        product_rows.append({"sku": f"SKU-{p + 1:04d}", "name": f"{style} {noun}", "category": category,
                             "tags": "; ".join([category, *tags])})
    category_of = np.array([names.index(r["category"]) for r in product_rows])
    quality = np.array([STYLES[r["name"].split()[0]] for r in product_rows])

    customer_rows, order_rows = [], []
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for c in range(customers):
        cid = f"C{c + 1:05d}"
        customer_rows.append({"customer_id": cid, "age_band": AGES[int(rng.integers(len(AGES)))],
                              "region": REGIONS[int(rng.integers(len(REGIONS)))]})
        favourite = rng.choice(len(names), size=2, replace=False)
        n = int(rng.integers(12, 41))
        liked = np.isin(category_of, favourite)
        weights = np.where(liked, 3.0, 1.0)
        bought = rng.choice(products, size=n, replace=False, p=weights / weights.sum())
        seconds = np.sort(rng.integers(0, 365 * 24 * 3600, size=n))
        for p, s in zip(bought, seconds):
            mean = 2.9 + quality[p] + (0.8 if liked[p] else -0.2)
            stars = int(np.clip(np.rint(rng.normal(mean, 0.8)), 1, 5))
            when = (start + timedelta(seconds=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ")
            order_rows.append({"order_id": f"O{len(order_rows) + 1:06d}", "customer_id": cid,
                               "sku": product_rows[p]["sku"], "stars": stars, "ordered_at": when})
    order_rows.sort(key=lambda r: r["ordered_at"])  # an export in time order, customers interleaved
    for name, rows in (("orders.csv", order_rows), ("products.csv", product_rows), ("customers.csv", customer_rows)):
        with open(out / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return {"orders": len(order_rows), "products": len(product_rows), "customers": len(customer_rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="shop", help="output folder [shop]")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--products", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = make_shop(Path(args.out), args.customers, args.products, args.seed)
    print(", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" written to {args.out}/")


if __name__ == "__main__":
    main()
