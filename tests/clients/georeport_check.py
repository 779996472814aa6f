#!/usr/bin/env python3
"""Open311 with a real client: georeport 0.3.1 (PyPI) against a running yiwang.

    YIWANG_BIN=$PWD/target/debug/yiwang python3 tests/clients/georeport_check.py

Needs `georeport==0.3.1` importable (.ci/run installs it in a virtualenv) and curl.
It starts the binary on a temporary SQLite database (as ../shared/contract/smoke.py
does), with tokens made by the CLI, and checks, as a city's Open311 users would:

1. with `--open311-public-reads` (and a jurisdiction): discovery names the endpoint;
   a request posted with `curl -d` (form-encoded, as curl sends it) is read back by
   georeport's client without a key, in JSON and in XML, with the public fields only
   (no reporter, the phone in the description masked); a multipart POST with a photo
   (`media`, sent by `requests` as mobile apps send it) shows its `media_url`, which
   serves the photo; another jurisdiction_id is a 400;
   CORS answers as `--cors-origins` says;
2. with public reads off (the default): the same reads get 403, in JSON and XML.

Prints one line per check and exits 1 on the first failure.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import requests
from georeport import GeoReport

signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))

BIN = os.environ.get("YIWANG_BIN") or os.path.join(os.getcwd(), "target", "debug", "yiwang")
PHOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "photo.png")
DB = f"sqlite://{tempfile.mkdtemp(prefix='yiwang-georeport-')}/yiwang.db"
JURISDICTION = "weihai-etdz"


def cli(*args):
    r = subprocess.run([BIN, *args, "--database-url", DB], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"yiwang {' '.join(args)}: {(r.stderr or r.stdout).strip()[-300:]}"
    return r.stdout


def token(role, unit):
    return cli("token", "create", "--user", f"georeport-{role}", "--role", role, "--unit", unit).strip().splitlines()[-1]


class Server:
    """`yiwang serve` on a free port with extra flags, until `stop`."""

    def __init__(self, *flags):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w", prefix="yiwang-georeport-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [BIN, "serve", "--addr", f"127.0.0.1:{self.port}", "--database-url", DB, *flags],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if urllib.request.urlopen(self.base + "/healthz", timeout=1).status == 200:
                    return
            except Exception:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"server not healthy; log: {self.log.name}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def check(what, cond, detail=""):
    if not cond:
        print(f"FAIL {what} {detail}")
        raise SystemExit(1)
    print(f"ok   {what}")


def status_of(call):
    try:
        call()
    except requests.HTTPError as e:
        return e.response.status_code
    return 200


PUBLIC_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
    "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url",
}


def main():
    assert os.path.exists(BIN), f"no binary at {BIN}: cargo build, or set YIWANG_BIN"
    cli("migrate")
    cli("org", "load", "--demo")
    hot = token("hotline_agent", "etdz")

    srv = Server("--open311-public-reads", "--open311-jurisdiction", JURISDICTION,
                 "--cors-origins", "https://dash.example.gov")
    try:
        disc = requests.get(srv.base + "/open311/discovery.json", timeout=10).json()
        endpoint = disc["endpoints"][0]
        root = endpoint["url"]
        check("discovery names this endpoint", root == srv.base + "/open311/v2"
              and endpoint["type"] == "production" and "text/xml" in endpoint["formats"], json.dumps(disc))

        # CORS as `serve` sets it: /open311/ any origin, /api/v1 reads the listed one.
        pre = requests.options(root + "/requests.json", timeout=10, headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        check("CORS: an Open311 preflight from any origin", pre.status_code == 200
              and pre.headers.get("Access-Control-Allow-Origin") == "*", dict(pre.headers))
        admin = token("admin", "etdz")
        api = requests.get(srv.base + "/api/v1/units", timeout=10, headers={
            "Origin": "https://dash.example.gov", "Authorization": "Bearer " + admin})
        check("CORS: /api/v1 reads from the listed origin", api.status_code == 200
              and api.headers.get("Access-Control-Allow-Origin") == "https://dash.example.gov", dict(api.headers))

        # Posted as curl -d sends it: form-encoded, the values as typed.
        out = subprocess.run(
            ["curl", "-sS", "-w", "\n%{http_code}", root + "/requests.json",
             "-d", f"api_key={hot}", "-d", "service_code=city.exposed_garbage",
             "-d", "lat=37.5012", "-d", "long=122.1005", "-d", "address_string=皇冠街道海滨北路12号",
             "-d", "description=小区门口垃圾三天未清运，联系电话13800001111",
             "-d", "first_name=先生", "-d", "last_name=赵", "-d", "phone=13800001111",
             "-d", f"jurisdiction_id={JURISDICTION}"],
            capture_output=True, text=True, timeout=30, check=True).stdout
        body, code = out.rsplit("\n", 1)
        check("curl -d posts a request", code == "201", out)
        rid = json.loads(body)[0]["service_request_id"]

        client = GeoReport(root, jurisdiction=JURISDICTION)
        r = client.get_service_request(rid)
        check("georeport reads it without a key (JSON)", r["service_request_id"] == rid and r["status"] == "open", r)
        check("only the spec's public fields", set(r) == PUBLIC_FIELDS, sorted(r))
        check("the phone is masked in the description",
              "13800001111" not in r["description"] and "138****1111" in r["description"], r["description"])
        check("no reporter", "赵" not in json.dumps(r, ensure_ascii=False))
        listed = [x["service_request_id"] for x in client.get_service_requests(status="open")]
        check("georeport lists it without a key (JSON)", rid in listed, listed)

        xml = GeoReport(root, jurisdiction=JURISDICTION, output_format="xml")
        r = xml.get_service_request(rid)
        check("georeport reads it without a key (XML)", r["service_request_id"] == rid and "138****1111" in r["description"], r)
        listed = xml.get_service_requests(service_request_id=rid)
        listed = listed if isinstance(listed, list) else [listed]
        check("georeport lists it without a key (XML)", [x["service_request_id"] for x in listed] == [rid], listed)

        services = client.get_service_list()
        check("georeport lists the services", any(s["service_code"] == "city.exposed_garbage" for s in services))
        other = GeoReport(root, jurisdiction="elsewhere")
        check("another jurisdiction_id is a 400", status_of(lambda: other.get_service_request(rid)) == 400)

        # A multipart POST with the photo, as a mobile app sends it.
        with open(PHOTO, "rb") as f:
            photo = f.read()
        m = requests.post(root + "/requests.json", timeout=30,
                          data={"api_key": hot, "service_code": "city.exposed_garbage",
                                "address_string": "皇冠街道夜市", "description": "占道经营，见照片"},
                          files={"media": ("photo.png", photo, "image/png")})
        check("a multipart POST with media is accepted", m.status_code == 201, m.text)
        mid = m.json()[0]["service_request_id"]
        r = client.get_service_request(mid)
        url = r.get("media_url") or ""
        check("its media_url is shown", url == f"{root}/requests/{mid}/media", url)
        got = requests.get(url, timeout=10)
        check("media_url serves the photo", got.status_code == 200
              and got.headers["Content-Type"] == "image/png" and got.content == photo,
              f"{got.status_code} {got.headers.get('Content-Type')}")
        r = xml.get_service_request(mid)
        check("its media_url in XML", r.get("media_url") == url, r)
    finally:
        srv.stop()

    srv = Server()
    try:
        root = srv.base + "/open311/v2"
        for fmt in ("json", "xml"):
            c = GeoReport(root, output_format=fmt)
            check(f"public reads off: 403 by id ({fmt})", status_of(lambda: c.get_service_request(rid)) == 403)
            check(f"public reads off: 403 for the list ({fmt})", status_of(lambda: c.get_service_requests()) == 403)
        keyed = requests.get(f"{root}/requests/{rid}.json", params={"api_key": hot}, timeout=10)
        check("with a key: read as before", keyed.status_code == 200
              and "13800001111" in keyed.json()[0]["description"], keyed.text)
    finally:
        srv.stop()
    print("georeport 0.3.1: all checks passed")


if __name__ == "__main__":
    main()
