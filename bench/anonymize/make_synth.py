#!/usr/bin/env python3
"""Scaling input for the anonymization benchmark: N rows, each column drawn independently (numpy seed 42) from
adult.csv's value frequencies, so the Adult hierarchies still apply. Usage: make_synth.py N OUT_DIR [ADULT_CSV]
(ADULT_CSV defaults to the copy shipped with the tests, crates/tokumei-anonymize/tests/data/adult/adult.csv.gz)."""
import os, sys
import numpy as np
import pandas as pd

n, out_dir = int(sys.argv[1]), sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
adult = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
    here, "..", "..", "crates", "tokumei-anonymize", "tests", "data", "adult", "adult.csv.gz")
df = pd.read_csv(adult, sep=";", dtype=str, keep_default_na=False)
rng = np.random.default_rng(42)
out = pd.DataFrame({c: rng.choice(df[c].values, size=n, replace=True) for c in df.columns})
os.makedirs(out_dir, exist_ok=True)
out.to_csv(os.path.join(out_dir, f"synth{n}.csv"), sep=";", index=False)
print(f"synth{n}", len(out), "distinct rows:", len(out.drop_duplicates()))
