#!/usr/bin/env python3
"""A population register and two releases of a third of it, for the re-identification battery's
engines benchmark (bench/reid/engines.sh). Seeded: the same arguments write the same bytes.

usage: gen_register.py PERSONS OUT_DIR [SEED]

OUT_DIR/register.csv     id, sex, birth_date, municipality_code (1 in 50 without sex)
OUT_DIR/truth.csv        pseudonym, person_id of every released person
OUT_DIR/coarse/          a release folder: sex, age band (10 years), prefecture
OUT_DIR/fine/            a release folder: sex, birth year-month, municipality (some blank)
"""
import csv
import datetime
import json
import os
import random
import sys

END = datetime.date(2024, 3, 31)


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    os.makedirs(out, exist_ok=True)
    first = datetime.date(1930, 1, 1)
    towns = [f"{p:02d}{t:03d}{(p * 7 + t) % 10}" for p in (1, 13, 27, 40) for t in range(100, 160, 3)]
    people = []
    for i in range(n):
        sex = "" if rng.randrange(50) == 0 else rng.choice("MF")
        birth = first + datetime.timedelta(days=rng.randrange(365 * 90))
        people.append((f"p{i:08d}", sex, birth.isoformat(), rng.choice(towns)))
    with open(os.path.join(out, "register.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "sex", "birth_date", "municipality_code"])
        w.writerows(people)
    released = [p for i, p in enumerate(people) if i % 3 == 0]
    with open(os.path.join(out, "truth.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pseudonym", "person_id"])
        w.writerows((f"r{i:08d}", p[0]) for i, p in enumerate(released))

    def age(birth):
        b = datetime.date.fromisoformat(birth)
        return END.year - b.year - ((END.month, END.day) < (b.month, b.day))

    def coarse(p):
        a = age(p[2]) // 10 * 10
        return ["sex", "age", "prefecture"], [p[1], f"{a}-{a + 9}", p[3][:2]]

    def fine(p):
        blank = p[3].endswith("0")
        return ["sex", "birth_year_month", "municipality"], [p[1], p[2][:7], "" if blank else p[3]]

    for name, release in (("coarse", coarse), ("fine", fine)):
        tables = os.path.join(out, name, "tables")
        os.makedirs(tables, exist_ok=True)
        with open(os.path.join(out, name, "manifest.json"), "w") as f:
            json.dump({"period_to": END.isoformat()}, f)
        with open(os.path.join(tables, "persons.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pseudonym"] + release(released[0])[0] if released else ["pseudonym"])
            for i, p in enumerate(released):
                w.writerow([f"r{i:08d}"] + release(p)[1])


if __name__ == "__main__":
    main()
