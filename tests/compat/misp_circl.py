"""Runs misp-modules 3.1.1's `circl_passivessl` expansion module (PyPI) against a certhist
server; prints one JSON object {ip: module answer}.

Usage: misp_circl.py BASE_URL USER KEY IP...   (BASE_URL ends in /compat/circl/)

The module has no URL setting: it calls pypssl.PyPSSL(basic_auth=…) with the default
https://www.circl.lu/. The one-line patch the docs give — replacing PyPSSL.__init__'s defaults —
points it at certhist; the module itself is unmodified. Each request is the JSON MISP sends to
an expansion module: config (username/password) and the attribute.
"""
import json
import sys
import uuid

import pypssl.api

from misp_modules.modules.expansion import circl_passivessl


def main():
    base_url, user, key, ips = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    pypssl.api.PyPSSL.__init__.__defaults__ = (base_url, 2, None, None)
    out = {}
    for ip in ips:
        attr_type = "ip-dst|port" if "|" in ip else "ip-dst"
        request = {
            "module": "circl_passivessl",
            "config": {"username": user, "password": key},
            "attribute": {"type": attr_type, "value": ip, "uuid": str(uuid.uuid4())},
        }
        out[ip] = circl_passivessl.handler(json.dumps(request))
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
