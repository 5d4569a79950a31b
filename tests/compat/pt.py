"""Drives the real passivetotal 2.5.9 client (PyPI) against a certhist server; prints one JSON
object.

Usage: pt.py [--tls] HOST:PORT USER KEY OP...
  OP = details:Q | history:Q | search:FIELD:VALUE | keyword:Q
       | analyzer-ip:IP | analyzer-cert-ips:SHA1 | analyzer-hostname:NAME

The client is constructed unmodified with server="HOST:PORT/compat/pt" (the path rides in the
host string). It always builds https:// URLs (api.py: api_base = 'https://%s/%s').
With --tls (a server with the self-signed certificate of `certhist serve --tls-self-signed`)
nothing is patched at all: for HOST 127.0.0.1 the client turns certificate verification off by
itself; for HOST localhost it verifies, against REQUESTS_CA_BUNDLE from the environment (the
test sets it to the server's certificate).
Without --tls (a plain-HTTP server) the script repoints `api_base` at plain HTTP, the one
attribute `_endpoint` reads — the smallest runtime patch (research compat-apis.md §2.1); the
analyzer's clients get the same patch after analyzer.init(). Nothing else of the client changes.
"""
import json
import sys

from passivetotal import analyzer
from passivetotal.libs.ssl import SslRequest


def plain_http(client, hostport):
    client.api_base = "http://%s/compat/pt/v2" % hostport


def error_of(e):
    resp = e.args[0] if e.args else None
    if hasattr(resp, "status_code"):
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        return {"exception": type(e).__name__, "status": resp.status_code, "body": body}
    return {"exception": type(e).__name__, "repr": repr(e)}


def main():
    args = sys.argv[1:]
    tls = args[0] == "--tls"
    if tls:
        args = args[1:]
    hostport, user, key, ops = args[0], args[1], args[2], args[3:]
    client = SslRequest(user, key, server=hostport + "/compat/pt")
    analyzer.init(username=user, api_key=key, server=hostport + "/compat/pt")
    if not tls:
        plain_http(client, hostport)
        for c in analyzer.api_clients.values():
            plain_http(c, hostport)
    out = {}
    for op in ops:
        kind, _, arg = op.partition(":")
        try:
            if kind == "details":
                out[op] = client.get_ssl_certificate_details(query=arg)
            elif kind == "history":
                out[op] = client.get_ssl_certificate_history(query=arg)
            elif kind == "search":
                field, _, value = arg.partition(":")
                out[op] = client.search_ssl_certificate_by_field(query=value, field=field)
            elif kind == "keyword":
                out[op] = client.search_keyword(query=arg)
            elif kind == "analyzer-ip":
                certs = analyzer.IPAddress(arg).certificates
                out[op] = [
                    {
                        "sha1": c.sha1,
                        "firstseen": str(c.firstseen),
                        "lastseen": str(c.lastseen),
                        # detail fields: fetched by the analyzer through ssl-certificate?query=
                        "subjectCommonName": str(c.subjectCommonName),
                        "date_issued": str(c.date_issued),
                        "date_expires": str(c.date_expires),
                        "days_valid": c.days_valid,
                    }
                    for c in certs.sorted_by("lastseen", True)
                ]
            elif kind == "analyzer-cert-ips":
                record = analyzer.ssl.CertHistoryRecord({"sha1": arg})
                out[op] = [str(ip) for ip in record.ips]
            elif kind == "analyzer-hostname":
                certs = analyzer.Hostname(arg).certificates
                out[op] = sorted(c.sha1 for c in certs)
            else:
                raise SystemExit("unknown op " + op)
        except Exception as e:
            out[op] = error_of(e)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
