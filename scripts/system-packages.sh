#!/bin/sh
# Installs the Debian packages the tests need, only when missing: tesseract for OCR, Chromium for
# the browser tests (Playwright drives /usr/bin/chromium; it never downloads a browser of its own).
# As root: apt-get update, then apt-get install. Otherwise: prints the command to run, exits 0.
set -eu

PACKAGES=""
command -v tesseract >/dev/null 2>&1 || PACKAGES="$PACKAGES tesseract-ocr tesseract-ocr-eng"
[ -x /usr/bin/chromium ] || PACKAGES="$PACKAGES chromium"

if [ -z "$PACKAGES" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "missing:$PACKAGES; the tests that need them will be skipped. To install them, run:"
    echo "    sudo apt-get update && sudo apt-get install -y$PACKAGES"
    echo "(or on macOS: brew install tesseract; browser tests look for /usr/bin/chromium)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing:$PACKAGES and this is not a Debian/Ubuntu system: install tesseract" \
        "(with English language data) and Chromium with your package manager"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends $PACKAGES
