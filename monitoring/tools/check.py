#!/usr/bin/python3
"""Static checks of monitoring/ (make monitoring-check).

    monitoring/tools/check.py --kvmstatd build/kvmstatd [--readme README.md]
                              [--tsc] [--work DIR]

1. the generated files are current (generate.py --check);
2. promtool check rules --lint=all --lint-fatal on the shipped rules;
3. promtool test rules on monitoring/tests/rules.test.yml;
4. coverage: every alert has a severity, a summary, a description, a
   runbook_url naming an existing monitoring/runbooks/<alert>.md, a firing
   and a non-firing test case; every recording rule is evaluated by a test;
5. every panel has a description and a unit, takes rates over
   $__rate_interval and selects by the cluster, job and instance variables;
   every dashboard query and variable query, its variables substituted,
   parses as PromQL (each becomes a recording rule checked by promtool);
6. every metric a dashboard query or a rule names is one kvmstatd exports
   (its --metrics-reference table, README's exit-telemetry and self-metric
   tables), `up`, or a recording rule; every `le` the rules select on the
   exit round-trip histogram is a bound kvmstatd prints;
7. the include profile is a valid [metrics] section (kvmstatd --check-config);
8. with --tsc: the dashboards type-check against @grafana/schema.
Prints one line per check; exits 1 if any failed.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MONITORING = os.path.dirname(HERE)
REPO = os.path.dirname(MONITORING)
sys.path.insert(0, HERE)
import generate  # noqa: E402
import promql  # noqa: E402

RULES_TEST = os.path.join(MONITORING, "tests", "rules.test.yml")
PROMTOOL = "promtool"
SEVERITIES = {"critical", "warning", "info"}


class Failed(Exception):
    pass


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise Failed("%s:\n%s" % (" ".join(cmd), r.stdout.strip()))
    return r.stdout


# ------------------------------------------------------------------ checks

def check_generated(_args):
    run([sys.executable, os.path.join(HERE, "generate.py"), "--check"])


def check_lint(_args):
    run([PROMTOOL, "check", "rules", "--lint=all", "--lint-fatal"] + generate.RULE_FILES)


def check_rule_tests(_args):
    run([PROMTOOL, "test", "rules", RULES_TEST])


def load_rules():
    alerts, records = {}, {}
    for path in generate.RULE_FILES:
        for group in yaml.safe_load(open(path))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
                else:
                    records[rule["record"]] = rule
    return alerts, records


def check_coverage(_args):
    alerts, records = load_rules()
    tests = yaml.safe_load(open(RULES_TEST))["tests"]
    firing, quiet, evaluated = set(), set(), set()
    for t in tests:
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
        for e in t.get("promql_expr_test", []):
            evaluated |= promql.metric_names(e["expr"])
    problems = []
    for name, rule in sorted(alerts.items()):
        labels, ann = rule.get("labels", {}), rule.get("annotations", {})
        if labels.get("severity") not in SEVERITIES:
            problems.append("%s: severity %r is not one of %s"
                            % (name, labels.get("severity"), sorted(SEVERITIES)))
        for key in ("summary", "description"):
            if not ann.get(key, "").strip():
                problems.append("%s: no %s annotation" % (name, key))
        want = "monitoring/runbooks/%s.md" % name
        if ann.get("runbook_url") != want:
            problems.append("%s: runbook_url %r, want %r" % (name, ann.get("runbook_url"), want))
        elif not os.path.isfile(os.path.join(REPO, want)):
            problems.append("%s: %s does not exist" % (name, want))
        if name not in firing:
            problems.append("%s: no test case in which it fires" % name)
        if name not in quiet:
            problems.append("%s: no test case in which it does not fire (exp_alerts: [])" % name)
    for name in sorted(records):
        if name not in evaluated:
            problems.append("recording rule %s: no promql_expr_test evaluates it" % name)
    runbooks = {f[:-3] for f in os.listdir(os.path.join(MONITORING, "runbooks")) if f.endswith(".md")}
    for extra in sorted(runbooks - set(alerts)):
        problems.append("runbooks/%s.md: no alert of that name" % extra)
    if problems:
        raise Failed("\n".join(problems))
    return "%d alerts, %d recording rules" % (len(alerts), len(records))


def dashboard_queries():
    """(where, expr) of every panel target and query variable, variables
    substituted."""
    out = []
    for d in generate.dashboards():
        j = d.to_json()
        for p in j["panels"]:
            for t in p.get("targets", []):
                out.append(("%s / %s / %s" % (d.uid, p["title"], t["refId"]),
                            promql.substitute(t["expr"], generate.VAR_VALUES)))
        for v in j["templating"]["list"]:
            if v["type"] != "query":
                continue
            q = v["query"]["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
            if not m:
                raise Failed("%s: variable %s: not label_values(selector, label): %r"
                             % (d.uid, v["name"], q))
            out.append(("%s / variable %s" % (d.uid, v["name"]),
                        promql.substitute(m.group(1), generate.VAR_VALUES)))
    return out


def check_panel_hygiene(_args):
    """Every panel has a description and a unit; every range in a query is
    $__rate_interval; every selector follows the host variables."""
    problems, n = [], 0
    for d in generate.dashboards():
        for p in d.to_json()["panels"]:
            if p["type"] == "row":
                continue
            n += 1
            where = "%s / %s" % (d.uid, p["title"])
            if not p.get("description", "").strip():
                problems.append("%s: no description" % where)
            if not p["fieldConfig"]["defaults"].get("unit"):
                problems.append("%s: no unit" % where)
            for t in p["targets"]:
                for rng in re.findall(r"\[([^\]]*)\]", t["expr"]):
                    if rng != "$__rate_interval":
                        problems.append("%s: range [%s], want [$__rate_interval]" % (where, rng))
                for sel in re.findall(r"\{([^}]*)\}", t["expr"]):
                    if '$instance' not in sel or '$cluster' not in sel or '$job' not in sel:
                        problems.append("%s: selector {%s} ignores the host variables"
                                        % (where, sel))
    if problems:
        raise Failed("\n".join(problems))
    return "%d panels" % n


def check_queries_parse(args):
    queries = dashboard_queries()
    groups = [{"name": where, "rules": [{"record": "dashboard:query:check", "expr": expr}]}
              for where, expr in queries]
    path = os.path.join(args.work, "dashboard-queries.rules.yml")
    with open(path, "w") as f:
        json.dump({"groups": groups}, f, indent=1)
    run([PROMTOOL, "check", "rules", path])
    return "%d queries" % len(queries)


def table_rows(text, heading):
    """First and second cells of the Markdown table rows under `heading`
    (up to the next heading)."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("#"):
            inside = line.strip("# ").startswith(heading)
            continue
        if inside and line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.append(cells)
    return rows


def exported_names(kvmstatd, readme):
    """Every sample name kvmstatd can export, from its own tables."""
    names = set()

    def add(name, kind):
        if kind.startswith("histogram"):
            # _sum from the cumulative twin, which is a counter of its own
            # under `histograms = no`
            names.update(name + s for s in ("_bucket", "_count", "_sum", "_total"))
        else:
            names.add(name)
    ref = run([kvmstatd, "--metrics-reference"])
    for cells in table_rows("# x\n" + ref, "x")[1:]:
        add(cells[0].strip("`"), cells[1])
    text = open(readme).read()
    for heading in ("Exit telemetry", "kvmstatd's own metrics"):
        rows = table_rows(text, heading)
        if len(rows) < 2:
            raise Failed("README: no table under a heading %r" % heading)
        for cells in rows[1:]:
            for n in re.findall(r"`?(kvm[a-z0-9_]*)(?:\{[^}]*\})?`?", cells[0]):
                add(n, cells[1])
    # the one info series, described in README's "Names" section
    if "kvm_vm_info{" in text:
        names.add("kvm_vm_info")
    if not any(n.startswith("kvmstatd_") for n in names):
        raise Failed("README: found no kvmstatd_* self-metrics")
    return names


def check_metric_names(args):
    _, records = load_rules()
    known = exported_names(args.kvmstatd, args.readme) | set(records) | {"up"}
    problems = []
    for where, expr in dashboard_queries():
        for n in sorted(promql.metric_names(expr) - known):
            problems.append("%s: %s is neither exported by kvmstatd nor recorded" % (where, n))
    for i, expr in enumerate(generate.rule_exprs()):
        for n in sorted(promql.metric_names(expr) - known):
            problems.append("rule expression %d: %s is neither exported nor recorded" % (i, n))
    if problems:
        raise Failed("\n".join(problems))
    return "%d names known" % len(known)


def roundtrip_bounds():
    """The `le` values of kvm_vcpu_exit_roundtrip_seconds as kvmstatd prints
    them: 2^k - 1 ns for k = KX_HIST_MIN_BITS .. + KX_HIST_BUCKETS - 2, as an
    exact decimal, then +Inf (daemon/*/bpf_layout.h, README's exit table)."""
    import glob
    paths = glob.glob(os.path.join(REPO, "daemon", "**", "bpf_layout.h"), recursive=True)
    if len(paths) != 1:
        raise Failed("bpf_layout.h: found %r" % paths)
    text = open(paths[0]).read()
    consts = {m.group(1): int(m.group(2))
              for m in re.finditer(r"#define (KX_HIST_\w+) (\d+)", text)}
    first, buckets = consts["KX_HIST_MIN_BITS"], consts["KX_HIST_BUCKETS"]
    out = {"+Inf"}
    for k in range(first, first + buckets - 1):
        ns = str(2 ** k - 1).rjust(10, "0")
        out.add((ns[:-9] + "." + ns[-9:]).rstrip("0").rstrip("."))
    return out


def check_bucket_bounds(_args):
    bounds = roundtrip_bounds()
    used = set()
    for expr in generate.rule_exprs():
        if "exit_roundtrip_seconds" in expr:
            used |= set(re.findall(r'le="([^"]*)"', expr))
    bad = sorted(used - bounds)
    if bad:
        raise Failed("le bounds the daemon never prints: %s (it prints %s)"
                     % (bad, sorted(bounds)))
    return "%s" % ", ".join(sorted(used))


def check_include_profile(args):
    path = os.path.join(args.work, "include-profile.ini")
    # as root the check runs as [daemon] user (the default kvmstatd, which
    # scripts/install-deps.sh creates); as anyone else, as that user
    import pwd
    user = "" if os.geteuid() == 0 else "user = %s\n" % pwd.getpwuid(os.geteuid()).pw_name
    with open(path, "w") as f:
        f.write("[daemon]\n%sbpf = off\n" % user)
        f.write(open(generate.INCLUDE_FILE).read())
    run([args.kvmstatd, "--check-config", "--config", path])


# Grafana's schema types its enums as TypeScript enums, which a JSON string
# is not assignable to: Loose<T> turns each enum into its literal values and
# leaves everything else (required fields, excess properties) as strict.
TS_PRELUDE = """\
import type { Dashboard } from '@grafana/schema';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as Heatmap from '@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen';

type Loose<T> = T extends string ? `${T}` : T extends number ? number :
  T extends boolean ? boolean : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;
"""
PANEL_OPTIONS = {"timeseries": "TimeSeries", "stat": "Stat", "table": "Table",
                 "heatmap": "Heatmap"}


def check_typescript(args):
    tsc = os.path.join(MONITORING, "node_modules", ".bin", "tsc")
    if not os.access(tsc, os.X_OK):
        raise Failed("%s missing: run scripts/install-npm-deps.sh" % tsc)
    srcdir = os.path.join(args.work, "ts")
    os.makedirs(srcdir, exist_ok=True)
    files = []
    for d in generate.dashboards():
        j = d.to_json()
        out = [TS_PRELUDE, "export const dashboard: Loose<Dashboard> = %s;\n" % json.dumps(j, indent=1)]
        for p in j["panels"]:
            mod = PANEL_OPTIONS.get(p["type"])
            if mod is None:
                continue
            out.append("export const options_%d: Loose<%s.Options> = %s;\n"
                       % (p["id"], mod, json.dumps(p["options"])))
            custom = p["fieldConfig"]["defaults"].get("custom")
            if custom is not None:
                out.append("export const custom_%d: Loose<%s.FieldConfig> = %s;\n"
                           % (p["id"], mod, json.dumps(custom)))
        path = os.path.join(srcdir, d.uid.replace("-", "_") + ".ts")
        with open(path, "w") as f:
            f.write("".join(out))
        files.append(path)
    tsconfig = {"compilerOptions": {"strict": True, "noEmit": True, "target": "ES2020",
                                    "module": "ESNext", "moduleResolution": "bundler",
                                    "skipLibCheck": True,
                                    "typeRoots": [], "types": [],
                                    "baseUrl": MONITORING,
                                    "paths": {"@grafana/schema": ["node_modules/@grafana/schema"],
                                              "@grafana/schema/*": ["node_modules/@grafana/schema/*"]}},
                "files": files}
    cfg = os.path.join(srcdir, "tsconfig.json")
    with open(cfg, "w") as f:
        json.dump(tsconfig, f, indent=1)
    run([tsc, "-p", cfg], cwd=MONITORING)
    return "%d dashboards" % len(files)


CHECKS = [
    ("generated files current", check_generated),
    ("promtool check rules --lint=all --lint-fatal", check_lint),
    ("promtool test rules", check_rule_tests),
    ("alerts: severity, summary, description, runbook, tests", check_coverage),
    ("panels: description, unit, $__rate_interval, host variables", check_panel_hygiene),
    ("dashboard queries parse", check_queries_parse),
    ("dashboard and rule metrics are exported or recorded", check_metric_names),
    ("round-trip bucket bounds in the rules are ones kvmstatd prints", check_bucket_bounds),
    ("include profile is a valid [metrics] section", check_include_profile),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kvmstatd", default=os.path.join(REPO, "build", "kvmstatd"))
    ap.add_argument("--readme", default=os.path.join(REPO, "README.md"))
    ap.add_argument("--tsc", action="store_true", help="type-check the dashboards too")
    ap.add_argument("--work", help="a directory for generated check files (default: a temp dir)")
    args = ap.parse_args()
    if args.work is None:
        args.work = tempfile.mkdtemp(prefix="kvmstatd-monitoring-check-")
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    checks = CHECKS + ([("dashboards type-check against @grafana/schema", check_typescript)]
                       if args.tsc else [])
    failed = 0
    for title, fn in checks:
        try:
            note = fn(args)
            print("  ok    %s%s" % (title, " (%s)" % note if note else ""))
        except Failed as e:
            failed += 1
            print("  FAIL  %s\n%s" % (title, "\n".join("        " + l for l in str(e).splitlines())))
    print("monitoring-check: %d passed, %d failed" % (len(checks) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
