#!/usr/bin/env python3
"""The checks of deploy/check that need a parser: `python3 deploy/checks.py NAME`.

Each prints what it found wrong and exits 1, or prints a one-line summary and exits 0.
Run from the repository root. Needs PyYAML for the YAML-reading checks.

  yaml      every *.yaml / *.yml under deploy/ parses (duplicate keys are errors)
  json      every *.json under deploy/ parses; the Grafana dashboard's structure
  metrics   every yiwang_ metric in the alert rules and the dashboard is defined in
            src/, with the labels it has there and the label values src/ names
  settings  every YIWANG_ environment variable named in deploy/ is read by src/
  compose   compose.yaml's references: services, conditions, files, volumes
  k8s       the manifests' references: selectors, ConfigMap, Secret, probes, PVC
  compose-schema SCHEMA
            compose.yaml validates against the Compose Specification's JSON schema
  dashboard-rules FILE
            writes FILE: each dashboard query as a recording rule, the variables
            replaced, so that `promtool check rules FILE` parses every query
  strip-annotations DIR
            writes DIR/alerts.yml: alerts.yml without annotations, for the rule tests
"""

import glob
import json
import os
import re
import sys

DEPLOY = "deploy"
SRC = "src"
ALERTS = os.path.join(DEPLOY, "prometheus", "alerts.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "yiwang.json")
COMPOSE = os.path.join(DEPLOY, "compose.yaml")
K8S = os.path.join(DEPLOY, "k8s")

problems = []


def problem(msg):
    problems.append(msg)


def finish(summary):
    if problems:
        for p in problems:
            print(p)
        sys.exit(1)
    print(summary)
    sys.exit(0)


def deploy_files(*exts):
    out = []
    for root, _dirs, files in os.walk(DEPLOY):
        for f in files:
            if f.endswith(exts):
                out.append(os.path.join(root, f))
    return sorted(out)


def yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml, Loader


def load_yaml_all(path):
    yaml, Loader = yaml_loader()
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=Loader) if d is not None]


# ---------------------------------------------------------------- yaml / json

def check_yaml():
    yaml, _ = yaml_loader()
    files = deploy_files(".yaml", ".yml")
    for path in files:
        try:
            docs = load_yaml_all(path)
            if not docs:
                problem(f"{path}: empty")
        except yaml.YAMLError as e:
            problem(f"{path}: {e}")
    finish(f"{len(files)} YAML files parse")


def check_json():
    files = deploy_files(".json")
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                json.load(f)
        except ValueError as e:
            problem(f"{path}: {e}")
    if problems:
        finish("")
    with open(DASHBOARD, encoding="utf-8") as f:
        d = json.load(f)
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        problem(f"{DASHBOARD}: schemaVersion {d.get('schemaVersion')!r}, want >= 36")
    variables = d.get("templating", {}).get("list", [])
    if not any(v.get("type") == "datasource" and v.get("query") == "prometheus"
               and v.get("name") == "datasource" for v in variables):
        problem(f"{DASHBOARD}: no Prometheus datasource variable named 'datasource'")
    names = {v.get("name") for v in variables}
    ids = set()
    targets = 0
    for p in panels(d):
        pid = p.get("id")
        if pid in ids:
            problem(f"{DASHBOARD}: panel id {pid} twice")
        ids.add(pid)
        gp = p.get("gridPos", {})
        if not all(isinstance(gp.get(k), int) for k in ("h", "w", "x", "y")) \
                or gp["x"] + gp["w"] > 24:
            problem(f"{DASHBOARD}: panel {p.get('title')!r}: bad gridPos {gp}")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problem(f"{DASHBOARD}: panel {p.get('title')!r} does not use ${{datasource}}")
        refs = set()
        for t in p.get("targets", []):
            targets += 1
            if not t.get("expr"):
                problem(f"{DASHBOARD}: panel {p.get('title')!r}: a target without expr")
            if t.get("refId") in refs:
                problem(f"{DASHBOARD}: panel {p.get('title')!r}: refId {t.get('refId')} twice")
            refs.add(t.get("refId"))
            for var in re.findall(r"\$(?:\{)?([a-zA-Z_]\w*)", t.get("expr", "")):
                if not var.startswith("__") and var not in names:
                    problem(f"{DASHBOARD}: panel {p.get('title')!r} uses ${var}, "
                            f"which is not a dashboard variable")
        if not p.get("targets"):
            problem(f"{DASHBOARD}: panel {p.get('title')!r} has no query")
    finish(f"{len(files)} JSON file(s) parse; dashboard: schemaVersion "
           f"{d.get('schemaVersion')}, {len(ids)} panels, {targets} queries")


def panels(d):
    for p in d.get("panels", []):
        yield p
        yield from p.get("panels", [])


# ---------------------------------------------------------------- metrics

def src_text():
    out = {}
    for path in glob.glob(os.path.join(SRC, "**", "*.rs"), recursive=True):
        with open(path, encoding="utf-8") as f:
            out[path] = f.read()
    return out


def defined_metrics(texts):
    """Metric name -> set of label names (None when they could not be read)."""
    names = {}
    for text in texts.values():
        for m in re.finditer(r'"(yiwang_[a-z0-9_]+)"', text):
            name = m.group(1)
            # The definition: from the name to the end of the statement that makes it.
            rest = text[m.end():]
            end = rest.find(".expect(")
            end = rest.find(";") if end < 0 else end
            chunk = rest[:end] if end >= 0 else ""
            if '"yiwang_' in chunk:
                chunk = chunk[:chunk.find('"yiwang_')]
            labels = re.search(r"&\[([^\]]*)\]", chunk)
            found = set(re.findall(r'"([a-z_]+)"', labels.group(1))) if labels else set()
            names.setdefault(name, set()).update(found)
    return names


def expressions():
    """(file, where, PromQL expression) of the alert rules and the dashboard."""
    out = []
    for doc in load_yaml_all(ALERTS):
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                out.append((ALERTS, r.get("alert") or r.get("record"), str(r.get("expr", ""))))
    with open(DASHBOARD, encoding="utf-8") as f:
        d = json.load(f)
    for p in panels(d):
        for t in p.get("targets", []):
            out.append((DASHBOARD, p.get("title"), t.get("expr", "")))
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and q:
            out.append((DASHBOARD, f"variable {v.get('name')}", q))
    return out


SUFFIXES = ("_bucket", "_count", "_sum")
ALWAYS = {"job", "instance"}
# Labels whose values src/ spells out as string literals.
VALUE_LABELS = {"type", "route", "projection", "engine", "limit"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def base_metric(name, defined):
    if name in defined:
        return name, False
    for s in SUFFIXES:
        if name.endswith(s) and name[:-len(s)] in defined:
            return name[:-len(s)], s == "_bucket"
    return None, False


def check_metrics():
    texts = src_text()
    defined = defined_metrics(texts)
    if not defined:
        problem(f"no yiwang_ metric defined in {SRC}/ (has the definition moved?)")
        finish("")
    literals = set()
    for text in texts.values():
        literals.update(re.findall(r'"([^"\\\n]*)"', text))
    used = set()
    exprs = expressions()
    for path, where, expr in exprs:
        metrics_here = set()
        for m in re.finditer(r"\b(yiwang_[a-zA-Z0-9_:]+)\s*(\{([^}]*)\})?", expr):
            name = m.group(1)
            base, bucket = base_metric(name, defined)
            if base is None:
                problem(f"{path}: {where}: metric {name} is not defined in {SRC}/")
                continue
            used.add(base)
            metrics_here.add((base, bucket))
            allowed = defined[base] | ALWAYS | ({"le"} if bucket else set())
            for lm in re.finditer(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"',
                                  m.group(3) or ""):
                label, op, value = lm.groups()
                if label not in allowed:
                    problem(f"{path}: {where}: {base} has no label {label!r} "
                            f"(it has: {', '.join(sorted(defined[base])) or 'none'})")
                elif label in VALUE_LABELS:
                    values = [value] if op in ("=", "!=") else value.split("|")
                    for v in values:
                        v = v.replace("\\\\", "\\")
                        if op in ("=~", "!~") and not re.fullmatch(r"[\w/{}.-]+", v):
                            continue  # a real regular expression: not checked
                        if v not in literals:
                            problem(f"{path}: {where}: {label}={v!r}: no such value "
                                    f"in {SRC}/ (no string literal {v!r})")
        # Grouping labels must be labels of a metric of the same expression.
        known = set(ALWAYS)
        for base, bucket in metrics_here:
            known |= defined[base] | ({"le"} if bucket else set())
        if re.search(r"\bup\b", expr):
            known |= ALWAYS
        for g in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            for label in re.findall(r"[a-zA-Z_]\w*", g.group(1)):
                if label not in known and label not in PROMQL_WORDS:
                    problem(f"{path}: {where}: groups by {label!r}, a label of none of "
                            f"its metrics")
    unused = sorted(set(defined) - used)
    note = f"; not used: {', '.join(unused)}" if unused else ""
    finish(f"{len(exprs)} expressions use {len(used)} of the {len(defined)} metrics "
           f"defined in {SRC}/, with their labels{note}")


# ---------------------------------------------------------------- settings

def check_settings():
    texts = src_text()
    read = set()
    for text in texts.values():
        read.update(re.findall(r'"(YIWANG_[A-Z0-9_]+)"', text))
    files = [p for p in deploy_files(".yaml", ".yml", ".example", "Dockerfile", ".service")
             if "grafana" not in p]
    named = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            for n in re.findall(r"\b(YIWANG_[A-Z0-9_]*[A-Z0-9])\b", f.read()):
                named.setdefault(n, set()).add(path)
    for n, paths in sorted(named.items()):
        if n not in read:
            problem(f"{', '.join(sorted(paths))}: {n} is not read anywhere in {SRC}/")
    finish(f"{len(named)} YIWANG_ variables named in {len(files)} files, all read by {SRC}/")


# ---------------------------------------------------------------- compose

def check_compose():
    (c,) = load_yaml_all(COMPOSE)
    base = os.path.dirname(COMPOSE)
    services = c.get("services") or {}
    volumes = set((c.get("volumes") or {}).keys())
    if not services:
        problem(f"{COMPOSE}: no services")
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, s in services.items():
        deps = s.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, how in deps.items():
            if dep not in services:
                problem(f"{COMPOSE}: {name} depends on {dep}, which is no service")
                continue
            cond = (how or {}).get("condition", "service_started")
            if cond not in conditions:
                problem(f"{COMPOSE}: {name}: unknown condition {cond}")
            if cond == "service_healthy" and "healthcheck" not in services[dep]:
                problem(f"{COMPOSE}: {name} waits for {dep} to be healthy; it has no healthcheck")
        build = s.get("build")
        if build:
            ctx = os.path.normpath(os.path.join(base, build.get("context", ".")))
            df = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            if not os.path.isdir(ctx):
                problem(f"{COMPOSE}: {name}: build context {ctx} is missing")
            if not os.path.isfile(df):
                problem(f"{COMPOSE}: {name}: {df} is missing")
        elif "image" not in s:
            problem(f"{COMPOSE}: {name}: neither build nor image")
        for v in s.get("volumes") or []:
            src = (v if isinstance(v, str) else v.get("source", "")).split(":")[0]
            if src.startswith((".", "/")):
                if not os.path.exists(os.path.normpath(os.path.join(base, src))):
                    problem(f"{COMPOSE}: {name}: bind mount source {src} is missing")
            elif src and src not in volumes:
                problem(f"{COMPOSE}: {name}: volume {src} is not declared")
    migrations = [n for n, s in services.items() if s.get("command") == ["migrate"]]
    if not migrations:
        problem(f"{COMPOSE}: no one-shot service runs `yiwang migrate`")
    for n, s in services.items():
        if (s.get("command") or [None])[0] == "serve":
            deps = s.get("depends_on") or {}
            if not any(isinstance(deps, dict) and (deps.get(m) or {}).get("condition")
                       == "service_completed_successfully" for m in migrations):
                problem(f"{COMPOSE}: {n} serves without waiting for the migration to succeed")
    finish(f"{len(services)} services: dependencies, conditions, build, files and volumes resolve")


# ---------------------------------------------------------------- k8s

def check_k8s():
    objs = {}
    kust = os.path.join(K8S, "kustomization.yaml")
    (k,) = load_yaml_all(kust)
    listed = set(k.get("resources", []))
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        if path == kust:
            continue
        name = os.path.basename(path)
        if name not in listed and not name.endswith(".example.yaml"):
            problem(f"{kust}: {name} is not listed in resources")
        for d in load_yaml_all(path):
            if "namespace" in d.get("metadata", {}):
                problem(f"{path}: {d['kind']} names a namespace (keep them namespace-agnostic)")
            objs[(d["kind"], d["metadata"]["name"])] = d
    for r in listed:
        if not os.path.isfile(os.path.join(K8S, r)):
            problem(f"{kust}: resource {r} is missing")

    def pods():
        for (kind, name), d in objs.items():
            if kind in ("Deployment", "Job"):
                yield kind, name, d["spec"]["template"]

    for kind, name, tpl in pods():
        spec = tpl["spec"]
        sc = spec.get("securityContext", {})
        if not sc.get("runAsNonRoot"):
            problem(f"{kind}/{name}: runAsNonRoot is not set")
        for c in spec["containers"]:
            csc = c.get("securityContext", {})
            if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation", True):
                problem(f"{kind}/{name}: {c['name']}: want readOnlyRootFilesystem and no "
                        f"privilege escalation")
            for e in c.get("envFrom", []):
                ref = e.get("configMapRef", {}).get("name")
                if ref and ("ConfigMap", ref) not in objs:
                    problem(f"{kind}/{name}: ConfigMap {ref} is not defined")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    sec = objs.get(("Secret", ref["name"]))
                    if not sec:
                        problem(f"{kind}/{name}: Secret {ref['name']} has no example")
                    elif ref["key"] not in sec.get("stringData", {}) | sec.get("data", {}):
                        problem(f"{kind}/{name}: Secret {ref['name']} has no key {ref['key']}")
            for m in c.get("volumeMounts", []):
                if m["name"] not in {v["name"] for v in spec.get("volumes", [])}:
                    problem(f"{kind}/{name}: volume {m['name']} is not defined")
        for v in spec.get("volumes", []):
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim and ("PersistentVolumeClaim", claim) not in objs:
                problem(f"{kind}/{name}: PersistentVolumeClaim {claim} is not defined")
        if kind == "Job" and spec["containers"][0].get("args") != ["migrate"]:
            problem(f"Job/{name}: does not run `yiwang migrate`")

    deps = [(n, d) for (kind, n), d in objs.items() if kind == "Deployment"]
    if not deps:
        problem(f"{K8S}: no Deployment")
    for n, d in deps:
        labels = d["spec"]["template"]["metadata"]["labels"]
        if (d["spec"].get("replicas") or 1) < 2:
            problem(f"Deployment/{n}: fewer than 2 replicas")
        sel = d["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            problem(f"Deployment/{n}: its selector does not match its pods")
        c = d["spec"]["template"]["spec"]["containers"][0]
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            problem(f"Deployment/{n}: readinessProbe is not GET /readyz")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            problem(f"Deployment/{n}: livenessProbe is not GET /healthz")
        if not c.get("resources", {}).get("requests"):
            problem(f"Deployment/{n}: no resource requests")
        ports = {p.get("name") for p in c.get("ports", [])} | {p.get("containerPort") for p in c.get("ports", [])}
        for (kind, on), o in objs.items():
            if kind == "Service":
                if any(labels.get(k) != v for k, v in o["spec"]["selector"].items()):
                    problem(f"Service/{on}: its selector matches no pod of Deployment/{n}")
                for p in o["spec"]["ports"]:
                    if p.get("targetPort", p["port"]) not in ports:
                        problem(f"Service/{on}: targetPort {p.get('targetPort')} is no port of the pod")
            if kind == "PodDisruptionBudget":
                if any(labels.get(k) != v for k, v in o["spec"]["selector"]["matchLabels"].items()):
                    problem(f"PodDisruptionBudget/{on}: its selector matches no pod of Deployment/{n}")
    for probe in ("/healthz", "/readyz"):
        if not any(f'"{probe}"' in t for t in src_text().values()):
            problem(f"{SRC}/ serves no {probe} any more")
    for n, d in deps:
        check_k8s_shutdown(n, d, objs)
    finish(f"{len(objs)} objects: selectors, ConfigMap, Secret, PVC, probes, "
           f"securityContext and the shutdown's timing agree")


def check_k8s_shutdown(n, d, objs):
    """A stop fits the pod's grace period: the preStop sleep, yiwang's drain and its
    grace (from the ConfigMap, else the defaults of src/http/server.rs) end before
    the kubelet's SIGKILL; and the sleep exists (the drain of a rolling update)."""
    spec = d["spec"]["template"]["spec"]
    c = spec["containers"][0]
    sleep = (c.get("lifecycle", {}).get("preStop", {}).get("sleep") or {}).get("seconds")
    if not isinstance(sleep, int) or sleep < 1:
        problem(f"Deployment/{n}: no preStop sleep: a rolling update sends requests "
                f"to a pod after it stopped listening")
        sleep = 0
    env = {}
    for e in c.get("envFrom", []):
        ref = e.get("configMapRef", {}).get("name")
        env.update((objs.get(("ConfigMap", ref)) or {}).get("data") or {})
    server = open(os.path.join(SRC, "http", "server.rs"), encoding="utf-8").read()

    def setting(var, const):
        if var in env:
            return int(env[var])
        m = re.search(rf"pub const {const}: u64 = (\d+);", server)
        if not m:
            problem(f"{SRC}/http/server.rs: no {const}")
            return 0
        return int(m.group(1))

    drain = setting("YIWANG_SHUTDOWN_DRAIN_SECS", "DEFAULT_SHUTDOWN_DRAIN_SECS")
    grace = setting("YIWANG_SHUTDOWN_GRACE_SECS", "DEFAULT_SHUTDOWN_GRACE_SECS")
    period = spec.get("terminationGracePeriodSeconds", 30)
    if sleep + drain + grace >= period:
        problem(f"Deployment/{n}: preStop sleep {sleep} s + drain {drain} s + grace "
                f"{grace} s reach terminationGracePeriodSeconds {period}: the kubelet "
                f"kills requests in flight")


def check_compose_schema(schema_path):
    import jsonschema
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    (c,) = load_yaml_all(COMPOSE)
    cls = getattr(jsonschema, "Draft201909Validator", None) \
        or jsonschema.validators.validator_for(schema)
    for e in sorted(cls(schema).iter_errors(c), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in e.path) or "(top)"
        problem(f"{COMPOSE}: {where}: {e.message[:300]}")
    finish(f"valid against {os.path.basename(schema_path)}")


def dashboard_rules(out_file):
    import yaml
    subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
             "${datasource}": "", "$job": "yiwang", "$instance": ".*"}
    rules = []
    for i, (_path, where, expr) in enumerate(expressions()):
        if not expr or expr.startswith("label_values("):
            continue
        for k, v in subst.items():
            expr = expr.replace(k, v)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr,
                      "labels": {"panel": str(where)}})
    with open(out_file, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f,
                       allow_unicode=True, sort_keys=False)


def strip_annotations(out_dir):
    import yaml
    docs = load_yaml_all(ALERTS)
    for doc in docs:
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                r.pop("annotations", None)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "alerts.yml"), "w", encoding="utf-8") as f:
        yaml.safe_dump_all(docs, f, allow_unicode=True, sort_keys=False)


CHECKS = {"yaml": check_yaml, "json": check_json, "metrics": check_metrics,
          "settings": check_settings, "compose": check_compose, "k8s": check_k8s}

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "strip-annotations":
        strip_annotations(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "dashboard-rules":
        dashboard_rules(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "compose-schema":
        check_compose_schema(sys.argv[2])
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        print(__doc__)
        sys.exit(2)
    CHECKS[sys.argv[1]]()
