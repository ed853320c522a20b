#!/usr/bin/env bash
# Prints the current ranges of the machine-readable sources behind
# data/scanner-networks.toml, as TOML lists to review and paste (with today's date as
# `retrieved`). Run by hand on a machine with internet access; nothing here runs in CI.
#
#   scripts/update-scanner-networks.sh > /tmp/networks.toml
#
# Sources without a machine-readable list (Mimecast, Proofpoint, Barracuda, Cisco) are
# read from the pages named in the data file.
set -euo pipefail
today=$(date -u +%Y-%m)
py() { python3 -c "$1"; }

echo "# Microsoft 365 endpoints web service, Exchange Online (IDs 1, 9, 10), $today"
curl -fsS "https://endpoints.office.com/endpoints/worldwide?serviceAreas=Exchange&clientrequestid=$(python3 -c 'import uuid; print(uuid.uuid4())')" |
  py 'import json,sys
for e in json.load(sys.stdin):
    if e.get("id") in (1, 9, 10) and e.get("ips"):
        print("# id", e["id"]); print("ranges = " + json.dumps(sorted(set(e["ips"]))))'

echo "# AWS ip-ranges.json (EC2), $today"
curl -fsS https://ip-ranges.amazonaws.com/ip-ranges.json |
  py 'import json,sys
d=json.load(sys.stdin)
print("ranges = " + json.dumps(sorted({p["ip_prefix"] for p in d["prefixes"] if p["service"]=="EC2"})))'

echo "# Google Cloud cloud.json, $today"
curl -fsS https://www.gstatic.com/ipranges/cloud.json |
  py 'import json,sys
d=json.load(sys.stdin)
print("ranges = " + json.dumps(sorted({p.get("ipv4Prefix") or p.get("ipv6Prefix") for p in d["prefixes"]})))'

echo "# Azure: download ServiceTags_Public_*.json from"
echo "#   https://www.microsoft.com/en-us/download/details.aspx?id=56519"
echo "# and take the AzureCloud tag's addressPrefixes."
