"""Splink on the FEBRL tasks with the settings of Splink's own FEBRL demos, for comparison with tokumei.

usage: splink_febrl.py link|dedupe LEFT.csv RIGHT.csv|- TRUE_PAIRS.csv [scale]

`scale` swaps the demo's blocking for tighter rules (the demo's postcode rule explodes at 1M records).
The last line printed is "precision | recall | F1 @0.5 | best F1" for the benchmark table.
"""
import sys

import pandas as pd
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

try:  # Splink 5
    from splink.backends.duckdb import DuckDBAPI
except ImportError:  # Splink 4
    from splink import DuckDBAPI

mode, left, right, truth_path = sys.argv[1:5]
scale = len(sys.argv) > 5 and sys.argv[5] == "scale"

dfs = [pd.read_csv(left, dtype=str)]
if mode == "link":
    dfs.append(pd.read_csv(right, dtype=str))

if scale:
    blocking = [
        block_on("soc_sec_id"),
        block_on("postcode", "street_number"),
        block_on("postcode", "surname"),
        block_on("date_of_birth", "postcode"),
        block_on("surname", "date_of_birth"),
        block_on("given_name", "date_of_birth"),
    ]
else:
    blocking = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]

settings = SettingsCreator(
    unique_id_column_name="rec_id",
    link_type="link_only" if mode == "link" else "dedupe_only",
    blocking_rules_to_generate_predictions=blocking,
    comparisons=[
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ],
    retain_intermediate_calculation_columns=False,
)
db = DuckDBAPI()
if hasattr(db, "register"):  # Splink 5: inputs are registered first
    linker = Linker([db.register(d) for d in dfs], settings)
else:
    linker = Linker(dfs, settings, db_api=db)
linker.training.estimate_probability_two_random_records_match(
    [block_on("soc_sec_id")], recall=0.8
)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
pred = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()

truth = pd.read_csv(truth_path, dtype=str)
a, b = truth.columns[:2]
true = set(zip(truth[a], truth[b])) | set(zip(truth[b], truth[a]))
pred["ok"] = [(l, r) in true for l, r in zip(pred["rec_id_l"], pred["rec_id_r"])]
n_true = len(truth)


def prf(df):
    tp = int(df["ok"].sum())
    p = tp / len(df) if len(df) else 1.0
    r = tp / n_true
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


p, r, f = prf(pred[pred["match_probability"] >= 0.5])
pred = pred.sort_values("match_probability", ascending=False)
tp = pred["ok"].cumsum().values
k = pd.Series(range(1, len(pred) + 1)).values
prec, rec = tp / k, tp / n_true
f1 = (2 * prec * rec / (prec + rec + 1e-300)).max() if len(pred) else 0.0
print(f"{p:.4f} | {r:.4f} | {f:.4f} | {f1:.4f}")
