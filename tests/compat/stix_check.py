"""Checks certhist STIX 2.1 exports with the real libraries (stix2 3.0.2, stix2-validator 3.3.2).

Usage: stix_check.py BUNDLE.json...  Prints one JSON line: per file, the validator's errors and
warnings (every check, strict), whether stix2.parse(allow_custom=False) accepted it, whether each
SCO id equals the id stix2 computes from the object's own properties, and the observed-data
resolved to (address, certificate SHA-1, first, last, count, labels) for the Rust test to compare
with the fixture rows.
"""
import json
import sys

import stix2
from stix2validator import ValidationOptions, validate_file


def check(path):
    results = validate_file(path, ValidationOptions(version="2.1", verbose=False))
    errors = [getattr(e, "message", str(e)) for o in results.object_results for e in (o.errors or [])]
    warnings = [getattr(w, "message", str(w)) for o in results.object_results for w in (o.warnings or [])]
    if results.fatal:
        errors.append("fatal: %s" % results.fatal.message)
    with open(path) as f:
        raw = json.load(f)
    parsed_ok = True
    try:
        stix2.parse(raw, allow_custom=False)
    except Exception as e:  # noqa: BLE001 - reported to the test
        parsed_ok = False
        errors.append("stix2.parse: %s" % e)
    by_id = {}
    id_mismatches = []
    for o in raw["objects"]:
        by_id[o["id"]] = o
        if o["type"] == "x509-certificate":
            kwargs = {"hashes": o["hashes"]}
            if "serial_number" in o:
                kwargs["serial_number"] = o["serial_number"]
            try:
                want = stix2.v21.X509Certificate(**kwargs).id
            except Exception as e:  # noqa: BLE001 - reported to the test
                want = "stix2 refused it: %s" % e
        elif o["type"] == "ipv4-addr":
            want = stix2.v21.IPv4Address(value=o["value"]).id
        elif o["type"] == "ipv6-addr":
            want = stix2.v21.IPv6Address(value=o["value"]).id
        else:
            continue
        if want != o["id"]:
            id_mismatches.append([o["id"], want])
    observed = []
    certs = {}
    for o in raw["objects"]:
        if o["type"] == "x509-certificate":
            certs[o["hashes"]["SHA-1"]] = {
                "sha256": o["hashes"].get("SHA-256"),
                "serial_number": o.get("serial_number"),
                "subject": o.get("subject"),
                "issuer": o.get("issuer"),
            }
        if o["type"] != "observed-data":
            continue
        refs = [by_id[r] for r in o["object_refs"]]
        addr = [r for r in refs if r["type"] in ("ipv4-addr", "ipv6-addr")]
        cert = [r for r in refs if r["type"] == "x509-certificate"]
        observed.append({
            "ip": addr[0]["value"],
            "sha1": cert[0]["hashes"]["SHA-1"],
            "first": o["first_observed"],
            "last": o["last_observed"],
            "count": o["number_observed"],
            "labels": o.get("labels", []),
        })
    relationships = sum(1 for o in raw["objects"] if o["type"] == "relationship")
    return {
        "errors": errors,
        "warnings": warnings,
        "parsed": parsed_ok,
        "id_mismatches": id_mismatches,
        "sco_ids_checked": sum(1 for o in raw["objects"] if o["type"] in ("x509-certificate", "ipv4-addr", "ipv6-addr")),
        "observed": observed,
        "certificates": certs,
        "relationships": relationships,
    }


print(json.dumps({p: check(p) for p in sys.argv[1:]}))
