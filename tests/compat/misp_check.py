"""Loads certhist MISP exports with the real pymisp (2.5.34.4).

Usage: misp_check.py EVENT.json...  Prints one JSON line: per file, every Python warning and
pymisp log record at WARNING or above raised while loading (MISPEvent.load), and what pymisp read:
the ip-dst attributes (value, first/last seen, tags) and the x509 objects (template uuid/version,
their attributes by relation, first/last seen, and the values of the attributes their `seen-by`
references point at).
"""
import json
import logging
import sys
import warnings

from pymisp import MISPEvent


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def iso(v):
    return v.isoformat() if v is not None else None


def check(path):
    handler = Collect()
    logging.getLogger("pymisp").addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        event = MISPEvent()
        event.load_file(path)
        # Serialise back: what pymisp would send to a MISP server.
        event.to_json()
    logging.getLogger("pymisp").removeHandler(handler)
    attrs = {a.uuid: a for a in event.attributes}
    out_attrs = [
        {
            "value": a.value,
            "type": a.type,
            "first_seen": iso(getattr(a, "first_seen", None)),
            "last_seen": iso(getattr(a, "last_seen", None)),
            "tags": sorted(t.name for t in a.tags),
            "comment": a.comment,
        }
        for a in event.attributes
    ]
    objects = []
    for o in event.objects:
        fields = {}
        for a in o.attributes:
            fields.setdefault(a.object_relation, []).append(
                a.value if not hasattr(a.value, "isoformat") else a.value.isoformat())
        seen_by = []
        for r in o.references:
            target = attrs.get(r.referenced_uuid)
            seen_by.append({
                "relationship": r.relationship_type,
                "ip": target.value if target is not None else None,
                "comment": target.comment if target is not None else None,
            })
        objects.append({
            "name": o.name,
            "template_uuid": o.template_uuid,
            "template_version": str(o.template_version),
            "first_seen": iso(getattr(o, "first_seen", None)),
            "last_seen": iso(getattr(o, "last_seen", None)),
            "fields": fields,
            "seen_by": seen_by,
        })
    return {
        "warnings": [str(w.message) for w in caught] + handler.records,
        "info": event.info,
        "attributes": out_attrs,
        "objects": objects,
    }


print(json.dumps({p: check(p) for p in sys.argv[1:]}))
