"""Posts Maltego TRX transform requests (the XML a Maltego TDS sends, fixtures under
tests/data/compat/maltego/) to a certhist server over real HTTP, and reads the answers with
maltego-trx 1.7.0 (PyPI) and Python's XML parser; prints one JSON object.

Usage: maltego.py BASE_URL OP_JSON...
  BASE_URL  http://HOST:PORT/compat/maltego/run/
  OP_JSON   {"id": ..., "transform": NAME, "fixture": PATH,
             optional "value": V (replaces Entity/Value), "soft": N (Limits/@SoftLimit),
             "apikey": K (the certhist.apikey transform setting; removed when absent),
             "username": U (adds the certhist.username setting),
             "authorization": H (an Authorization header)}

For each op it reports:
  request   what maltego-trx's own request parser (MaltegoMsg, the class its transform server
            hands to transforms) reads from the XML sent: Type, Value, Slider (SoftLimit),
            properties and transform settings — so the fixture is a request maltego-trx accepts;
  status, content_type;
  entities  [{type, value, weight, fields: {Name: {display, matching, value}}}] and
  messages  [[MessageType, text]] as xml.etree reads the answer;
  same_as_trx  whether the answer is, after XML canonicalisation, exactly the document
            maltego-trx's MaltegoTransform writes for the same entities, properties and
            messages (element names, nesting, attributes, order).
The Rust test (query-api/tests/it/compat.rs) asserts the values against the database.
"""
import json
import sys
import xml.etree.ElementTree as ET

import requests

from maltego_trx.maltego import MaltegoMsg, MaltegoTransform


def build_request(op):
    with open(op["fixture"], "rb") as f:
        root = ET.fromstring(f.read())
    msg = root.find("MaltegoTransformRequestMessage")
    entity = msg.find("Entities/Entity")
    if "value" in op:
        entity.find("Value").text = op["value"]
    if "soft" in op:
        msg.find("Limits").set("SoftLimit", str(op["soft"]))
    settings = msg.find("TransformFields")
    if settings is None:
        settings = ET.SubElement(msg, "TransformFields")
    for field in list(settings.findall("Field")):
        if field.get("Name") in ("certhist.apikey", "certhist.username"):
            settings.remove(field)
    if "apikey" in op:
        ET.SubElement(settings, "Field", {"Name": "certhist.apikey"}).text = op["apikey"]
    if "username" in op:
        ET.SubElement(settings, "Field", {"Name": "certhist.username"}).text = op["username"]
    return ET.tostring(root, encoding="utf-8")


def read_answer(text):
    root = ET.fromstring(text)
    resp = root.find("MaltegoTransformResponseMessage")
    entities = []
    for e in resp.findall("Entities/Entity"):
        fields = {}
        for f in e.findall("AdditionalFields/Field"):
            fields[f.get("Name")] = {
                "display": f.get("DisplayName"),
                "matching": f.get("MatchingRule"),
                "value": f.text or "",
            }
        entities.append({
            "type": e.get("Type"),
            "value": e.findtext("Value"),
            "weight": e.findtext("Weight"),
            "fields": fields,
        })
    messages = [[m.get("MessageType"), m.text] for m in resp.findall("UIMessages/UIMessage")]
    return root.tag, entities, messages


def as_trx(entities, messages):
    """The same answer, written by maltego-trx."""
    t = MaltegoTransform()
    for e in entities:
        ent = t.addEntity(e["type"], e["value"])
        ent.setWeight(int(e["weight"]))
        for name, f in e["fields"].items():
            ent.addProperty(name, f["display"], f["matching"], f["value"])
    for kind, text in messages:
        t.addUIMessage(text, kind)
    return t.returnOutput()


def main():
    base, ops = sys.argv[1], [json.loads(a) for a in sys.argv[2:]]
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    out = {}
    for op in ops:
        body = build_request(op)
        parsed = MaltegoMsg(body.decode("utf-8"))
        result = {
            "request": {
                "type": parsed.Type,
                "value": parsed.Value,
                "slider": parsed.Slider,
                "properties": parsed.Properties,
                "settings": sorted(parsed.TransformSettings),
            }
        }
        headers = {"Content-Type": "text/xml"}
        if "authorization" in op:
            headers["Authorization"] = op["authorization"]
        resp = session.post(base + op["transform"], data=body, headers=headers, timeout=60)
        result["status"] = resp.status_code
        result["content_type"] = resp.headers.get("Content-Type")
        root, entities, messages = read_answer(resp.content)
        result["root"] = root
        result["entities"] = entities
        result["messages"] = messages
        ours = ET.canonicalize(resp.content.decode("utf-8"), strip_text=True)
        theirs = ET.canonicalize(as_trx(entities, messages), strip_text=True)
        result["same_as_trx"] = ours == theirs
        if ours != theirs:
            result["ours"] = ours
            result["theirs"] = theirs
        out[op["id"]] = result
    print(json.dumps(out))


if __name__ == "__main__":
    main()
