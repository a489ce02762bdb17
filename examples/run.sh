#!/usr/bin/env bash
# The main job on the bundled example data: import into examples/store, then
# segment the customers and print the weekly KPIs. Safe to run again (imports
# are idempotent). Uses .venv/bin/crmkit when present, else crmkit on PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
crmkit="$here/../.venv/bin/crmkit"
[ -x "$crmkit" ] || crmkit="crmkit"
export CRMKIT_CONFIG="$here/crmkit.yaml"   # store: examples/store, targets, clv settings

"$crmkit" import customers "$here/customers.csv"
"$crmkit" import transactions "$here/transactions.csv"
"$crmkit" import transactions "$here/orders_gbk.csv"          # GBK, Chinese headers, ¥ amounts
"$crmkit" import transactions "$here/broken_transactions.csv" # shows rejects with line numbers
"$crmkit" info
"$crmkit" segment --summary
"$crmkit" report kpi --period month
