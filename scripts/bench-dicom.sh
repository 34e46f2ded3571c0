#!/usr/bin/env bash
# DICOM header de-identification: `tokumei dicom deid` beside dicognito, on the public test files
# that the pydicom and deid-data packages ship (fetched from PyPI into target/, never committed;
# pydicom and deid-data are MIT-licensed, their test files carry their own notices), and the
# share of Table E.1-1 attributes each leaves unchanged, measured by `tokumei dicom compare`.
# Usage: scripts/bench-dicom.sh [RUNS]      (default 5; the best run of each tool is reported)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
work=$root/target/bench-dicom
rm -rf "$work"
mkdir -p "$work"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "pydicom==3.0.2" "dicognito==0.19.0" "deid-data==0.0.20"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$work/corpus/deid-data"
cp -r "$site/pydicom/data/test_files" "$work/corpus/pydicom"
find "$site/deid_data" -name '*.dcm' -exec cp {} "$work/corpus/deid-data/" \;
(cd "$root" && cargo build --release -q -p tokumei-cli)
tokumei=$root/target/release/tokumei
files=$(find "$work/corpus" -type f | wc -l)
bytes=$(du -sb "$work/corpus" | cut -f1)
echo "corpus: $files files, $bytes bytes; $(nproc) cores"

best() { sort -n | head -1; }
seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }

for i in $(seq "$runs"); do
  rm -rf "$work/tokumei"
  seconds "$tokumei" dicom deid --in "$work/corpus" --out "$work/tokumei" --profile basic
done | best > "$work/tokumei.s"
# dicognito's own command stops the whole batch at the first file it cannot write; its library
# is driven file by file instead (one process, as the command runs), a file it cannot do removed.
cat > "$work/dicognito_each.py" <<'PY'
import os, sys
import pydicom
from dicognito.anonymizer import Anonymizer
anonymizer = Anonymizer()
done = 0
for root, _, names in os.walk(sys.argv[1]):
    for name in names:
        path = os.path.join(root, name)
        try:
            with pydicom.dcmread(path) as ds:
                anonymizer.anonymize(ds)
                ds.save_as(path)
            done += 1
        except Exception:
            os.remove(path)
print(done)
PY
for i in $(seq "$runs"); do
  rm -rf "$work/dicognito"
  cp -r "$work/corpus" "$work/dicognito"
  seconds "$work/venv/bin/python" "$work/dicognito_each.py" "$work/dicognito"
done | best > "$work/dicognito.s"

for tool in tokumei dicognito; do
  s=$(cat "$work/$tool.s")
  rate=$(echo "$files / $s" | bc -l)
  printf '%-10s %6.2f s  %6.0f files/s  ' "$tool" "$s" "$rate"
  "$tokumei" dicom compare --original "$work/corpus" --output "$work/$tool" --profile basic
done
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("tokumei: written", r["written"], "withheld", r["withheld"], "refused", r["refused"], "not read", r["quarantined"])' \
  "$work/tokumei/deid-report.json"
echo "dicognito: $(find "$work/dicognito" -type f | wc -l) files written"

# Memory per file: one multi-frame CT of 200 MiB (400 frames of 512 × 512, 16 bits) written by
# pydicom, de-identified alone; the peak resident memory of the process.
mkdir -p "$work/big/in"
"$work/venv/bin/python" - "$work/big/in/big.dcm" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = Dataset()
ds.file_meta = meta
ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
ds.PatientName, ds.PatientID, ds.Modality = "Yamada^Taro", "P-1", "CT"
ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
ds.Rows = ds.Columns = 512
ds.NumberOfFrames = 400
ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
ds.BitsAllocated = ds.BitsStored = 16
ds.HighBit, ds.PixelRepresentation = 15, 0
ds.PixelData = bytes(2 * 512 * 512 * 400)
ds.save_as(sys.argv[1], enforce_file_format=True)
PY
/usr/bin/time -f "one file of $(du -m "$work/big/in/big.dcm" | cut -f1) MiB: %e s, peak %M KiB" \
  "$tokumei" dicom deid --in "$work/big/in" --out "$work/big/out" >/dev/null
rm -rf "$work/big"
