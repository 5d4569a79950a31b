"""Drives the real pypssl 2.2 client (PyPI) against a certhist server; prints one JSON object.

Usage: circl.py BASE_URL USER KEY OP...   (BASE_URL ends in /compat/circl/, as documented)
  OP = query:IP_OR_CIDR | cquery:SHA1 | cfetch:SHA1 | token-query:IP (auth_token form)
The Rust test (query-api/tests/it/compat.rs) asserts the values. The client is not patched.
"""
import datetime
import json
import sys

import pypssl


def main():
    base_url, user, key, ops = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    client = pypssl.PyPSSL(base_url=base_url, basic_auth=(user, key))
    token_client = pypssl.PyPSSL(base_url=base_url, auth_token=key)
    out = {}
    for op in ops:
        kind, _, arg = op.partition(":")
        try:
            if kind == "query":
                out[op] = client.query(arg)
            elif kind == "token-query":
                out[op] = token_client.query(arg)
            elif kind == "cquery":
                out[op] = client.query_cert(arg)
            elif kind == "cfetch":
                res = client.fetch_cert(arg)
                info = res.get("info")
                if info is not None:
                    # fetch_cert turned the dates into datetime objects with dateutil: record
                    # that it did, and their values.
                    for k in ("not_before", "not_after"):
                        v = info[k]
                        info[k] = {"type": type(v).__name__, "iso": v.isoformat()}
                out[op] = res
            else:
                raise SystemExit("unknown op " + op)
        except Exception as e:  # the client raises on a non-JSON answer
            out[op] = {"exception": repr(e)}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
