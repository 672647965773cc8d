#!/bin/sh
# Installs the Debian packages the tests need (tesseract for OCR), only when missing.
# As root: apt-get update, then apt-get install. Otherwise: prints the command to run, exits 0.
set -eu

PACKAGES="tesseract-ocr tesseract-ocr-eng"

if command -v tesseract >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "tesseract is missing; OCR tests will be skipped. To install it, run:"
    echo "    sudo apt-get update && sudo apt-get install -y $PACKAGES"
    echo "(or on macOS: brew install tesseract)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "tesseract is missing and this is not a Debian/Ubuntu system: install tesseract" \
        "(with English language data) with your package manager"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends $PACKAGES
