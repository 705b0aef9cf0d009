#!/bin/sh
# The README's one command makes the package importable: a venv that sees Debian's modules,
# and pip installing python/ with nothing from the network. Run by ctest (python_install).
# Usage: install_check.sh PYTHON SOURCE_DIR
set -eu
python=$1
source_dir=$2
work=$(mktemp -d /tmp/handoff-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$source_dir/python" "$work/src"  # the build leaves files beside the sources
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --quiet --no-index --no-build-isolation "$work/src"
cd "$work"
"$work/venv/bin/python" -c '
import sys, handoff, handoff.aio
assert handoff.__file__.startswith(sys.prefix), handoff.__file__
assert handoff.Client and handoff.Agent and handoff.aio.Client
print("importable from", handoff.__file__)
'
