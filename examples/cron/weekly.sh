#!/usr/bin/env bash
# Weekly CRM report for cron: import the latest exports, then write the bundle.
#
#   CRMKIT_HOME   project folder holding crmkit.yaml (default: this script's ../)
#   CRMKIT        the crmkit executable (default: crmkit on PATH)
#   REPORTS       where the dated bundles go (default: $CRMKIT_HOME/reports)
#   EXPORTS       folder with customers.csv / transactions.csv exports (optional)
#
# Reports the last complete week (Monday to Sunday) before today. Exits
# non-zero with one line on stderr when the data is missing or stale, so cron
# mails the reason.
set -euo pipefail

CRMKIT_HOME="${CRMKIT_HOME:-$(cd "$(dirname "$0")/.." && pwd)}"
CRMKIT="${CRMKIT:-crmkit}"
REPORTS="${REPORTS:-$CRMKIT_HOME/reports}"
AS_OF="${AS_OF:-$(date -d yesterday +%F)}"   # yesterday = Sunday when run on Monday
export CRMKIT_CONFIG="$CRMKIT_HOME/crmkit.yaml"

if [ -n "${EXPORTS:-}" ]; then
  [ -f "$EXPORTS/customers.csv" ] && "$CRMKIT" import customers "$EXPORTS/customers.csv" --quiet
  [ -f "$EXPORTS/transactions.csv" ] && "$CRMKIT" import transactions "$EXPORTS/transactions.csv" --quiet --max-reject-rate 0.05
fi

"$CRMKIT" report weekly --as-of "$AS_OF" --period week --out "$REPORTS" --quiet
echo "$(date -Is) weekly report as of $AS_OF written to $REPORTS/ (one folder per week, e.g. 2026-W46/)" >&2
