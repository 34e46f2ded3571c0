#!/usr/bin/env bash
# What the tests need beyond the Rust toolchain: Debian's Chromium and ChromeDriver for the browser
# tests of the web pages (crates/tokumei-cli/tests/commands/browser.rs), Tesseract with Japanese
# for the burned-in text check of DICOM images (crates/tokumei-dicom/tests/ocr.rs), and the public
# DICOM test files below. Installed when missing; the README's test command and .ci/run both call
# this. restic (the backup engine) and OpenSSH's server and client, for the backup tests
# (crates/tokumei-cli/tests/commands/backup.rs: an sshd on loopback is the second site).
set -euo pipefail
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
  || ! command -v tesseract >/dev/null 2>&1 || [ ! -f /usr/share/tesseract-ocr/5/tessdata/jpn.traineddata ] \
  || ! command -v restic >/dev/null 2>&1 || [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-noto-cjk \
    tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn restic openssh-server openssh-client
fi
# The public DICOM test files that the pydicom and deid-data packages ship (PyPI; MIT-licensed, the
# files with their own notices), for crates/tokumei-dicom/tests/corpus.rs: fetched, never committed.
corpus="$(cd "$(dirname "$0")/.." && pwd)/target/dicom-corpus"
if [ ! -f "$corpus/.complete" ]; then
  rm -rf "$corpus"
  mkdir -p "$corpus/wheels"
  python3 -m pip download -q --no-deps -d "$corpus/wheels" "pydicom==3.0.2" "deid-data==0.0.20"
  python3 - "$corpus" <<'PY'
import pathlib, sys, zipfile
root = pathlib.Path(sys.argv[1])
for wheel in sorted((root / "wheels").glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            keep = name.startswith("pydicom/data/test_files/") or (
                name.startswith("deid_data/") and name.endswith(".dcm"))
            if keep and not name.endswith("/"):
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
PY
  touch "$corpus/.complete"
fi
