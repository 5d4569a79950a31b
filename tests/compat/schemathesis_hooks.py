"""Hooks of the schemathesis contract run (query-api/tests/it/contract.rs).

Two rules of the API cannot be written in OpenAPI 3.1 parameter schemas, so generated
*schema-valid* requests that break them would be reported as "valid data rejected" although
the 400 is right. In positive mode only (negative cases are left untouched):

- `cursor` is opaque: only a `next_cursor` the server returned for the same query is valid
  (any other value answers 400 naming `cursor`). It is removed from positive cases.
- `since` must not be after `until` (400 naming `until`): when both are generated, `until` is
  removed.
"""

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    query = case.query
    if not query:
        return
    query.pop("cursor", None)
    if "since" in query and "until" in query:
        query.pop("until")


# `POST /api/v1/uploads/certificates` takes PEM text (RFC 7468) as `application/x-pem-file`;
# `POST /api/v1/uploads/cryptnet` a ZIP archive.
schemathesis.serializer.alias("application/x-pem-file", "text/plain")
schemathesis.serializer.alias("application/zip", "application/octet-stream")
# Capture uploads are binary like ZIP; eve.json is NDJSON, sent as text (the fuzzed bodies are
# strings: a schema-valid string is not a capture / eve log, which the upload relaxations cover).
schemathesis.serializer.alias("application/vnd.tcpdump.pcap", "application/octet-stream")
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
